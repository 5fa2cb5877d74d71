"""Declarations of the libbpf API that tinybpf calls, for cffi's API mode.

Grouped per header, each group in the pinned header's order, so that a libbpf bump is a
mechanical diff. Every struct that Python reads or writes ends in ``...;``: the C compiler
supplies sizes and offsets. Integer typedefs are ``int...`` and enum values ``...``, so no
layout, size or constant is written by hand here or anywhere in Python. The uapi enums
(map, program, attach and link types, BTF kinds) come from uapi_enums.py, which
gen_uapi.py generates from the pinned headers together with tinybpf/_uapi.py.
"""

from uapi_enums import UAPI_ENUMS

# linux/types.h
TYPES = """
typedef int... __u8;
typedef int... __u16;
typedef int... __u32;
typedef int... __u64;
typedef int... __s32;
typedef int... __s64;
"""

# the uapi constants and structs that the object layer needs (linux/bpf.h, linux/btf.h, as
# shipped in libbpf's include/uapi); their enums are UAPI_ENUMS
UAPI = """
#define BPF_ANY ...
#define BPF_NOEXIST ...
#define BPF_EXIST ...
#define BPF_F_LOCK ...
#define BPF_OBJ_NAME_LEN ...
#define BPF_F_MMAPABLE ...
#define BPF_F_NO_PREALLOC ...
#define BPF_F_RDONLY_PROG ...
#define BPF_F_BEFORE ...
#define BPF_F_AFTER ...
#define BPF_F_TOKEN_FD ...
#define XDP_FLAGS_UPDATE_IF_NOEXIST ...
#define XDP_FLAGS_SKB_MODE ...
#define XDP_FLAGS_DRV_MODE ...
#define XDP_FLAGS_HW_MODE ...
#define XDP_FLAGS_REPLACE ...
#define SO_ATTACH_BPF ...
#define SO_DETACH_BPF ...

struct bpf_map_info {
    __u32 type;
    __u32 id;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
    char name[...];
    __u32 btf_id;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    ...;
};

struct bpf_prog_info {
    __u32 type;
    __u32 id;
    __u8 tag[...];
    __u32 jited_prog_len;
    __u32 xlated_prog_len;
    __u32 created_by_uid;
    __u32 nr_map_ids;
    __u64 map_ids;
    char name[...];
    __u32 btf_id;
    __u32 func_info_rec_size;
    __u64 func_info;
    __u32 nr_func_info;
    __u64 run_time_ns;
    __u64 run_cnt;
    __u64 recursion_misses;
    __u32 verified_insns;
    ...;
};

struct bpf_btf_info {
    __u64 name;
    __u32 name_len;
    __u32 id;
    __u32 btf_size;
    __u32 kernel_btf;
    ...;
};

struct bpf_func_info { __u32 insn_off; __u32 type_id; ...; };

#define BTF_INT_SIGNED ...
#define BTF_INT_CHAR ...
#define BTF_INT_BOOL ...

struct btf_type {
    __u32 name_off;
    __u32 info;
    union {
        __u32 size;
        __u32 type;
    };
    ...;
};

struct btf_array { __u32 type; __u32 index_type; __u32 nelems; ...; };
struct btf_member { __u32 name_off; __u32 type; __u32 offset; ...; };
struct btf_enum { __u32 name_off; __s32 val; ...; };
struct btf_enum64 { __u32 name_off; ...; };
struct btf_param { __u32 name_off; __u32 type; ...; };
struct btf_var { __u32 linkage; ...; };
struct btf_var_secinfo { __u32 type; __u32 offset; __u32 size; ...; };
struct btf_decl_tag { __s32 component_idx; ...; };


enum btf_func_linkage { BTF_FUNC_EXTERN, ... };
"""

# bpf/libbpf_common.h, bpf/libbpf.h
LIBBPF_H = """
enum libbpf_print_level { LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG, ... };

int libbpf_strerror(int err, char *buf, size_t size);
__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);
const char *libbpf_version_string(void);

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
struct btf;

struct bpf_object_open_opts {
    size_t sz;
    const char *object_name;
    const char *pin_root_path;
    const char *kconfig;
    const char *btf_custom_path;
    char *kernel_log_buf;
    size_t kernel_log_size;
    __u32 kernel_log_level;
    const char *bpf_token_path;
    ...;
};

struct bpf_object *bpf_object__open_file(const char *path, const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
                                             struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
bool bpf_program__autoattach(const struct bpf_program *prog);
void bpf_program__set_autoattach(struct bpf_program *prog, bool autoattach);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);

struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
int bpf_link__fd(const struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);

struct bpf_link *bpf_program__attach_raw_tracepoint(const struct bpf_program *prog,
                                                    const char *tp_name);
struct bpf_link *bpf_program__attach_xdp(const struct bpf_program *prog, int ifindex);

int bpf_program__pin(struct bpf_program *prog, const char *path);
int bpf_program__unpin(struct bpf_program *prog, const char *path);
struct bpf_link *bpf_link__open(const char *path);
const char *bpf_link__pin_path(const struct bpf_link *link);
int bpf_link__pin(struct bpf_link *link, const char *path);
int bpf_link__unpin(struct bpf_link *link);
int bpf_link__update_program(struct bpf_link *link, struct bpf_program *prog);
int bpf_link__detach(struct bpf_link *link);

struct bpf_perf_event_opts { size_t sz; __u64 bpf_cookie; bool force_ioctl_attach; ...; };
struct bpf_link *bpf_program__attach_perf_event_opts(const struct bpf_program *prog, int pfd,
                                                     const struct bpf_perf_event_opts *opts);

struct bpf_kprobe_opts { size_t sz; __u64 bpf_cookie; size_t offset; bool retprobe; ...; };
struct bpf_link *bpf_program__attach_kprobe_opts(const struct bpf_program *prog,
                                                 const char *func_name,
                                                 const struct bpf_kprobe_opts *opts);

struct bpf_kprobe_multi_opts {
    size_t sz;
    const char **syms;
    const __u64 *cookies;
    size_t cnt;
    bool retprobe;
    ...;
};
struct bpf_link *bpf_program__attach_kprobe_multi_opts(const struct bpf_program *prog,
                                                       const char *pattern,
                                                       const struct bpf_kprobe_multi_opts *opts);

struct bpf_uprobe_multi_opts {
    size_t sz;
    const char **syms;
    const __u64 *cookies;
    size_t cnt;
    bool retprobe;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_multi(const struct bpf_program *prog, int pid,
                                                  const char *binary_path,
                                                  const char *func_pattern,
                                                  const struct bpf_uprobe_multi_opts *opts);

struct bpf_ksyscall_opts { size_t sz; __u64 bpf_cookie; bool retprobe; ...; };
struct bpf_link *bpf_program__attach_ksyscall(const struct bpf_program *prog,
                                              const char *syscall_name,
                                              const struct bpf_ksyscall_opts *opts);

struct bpf_uprobe_opts {
    size_t sz;
    size_t ref_ctr_offset;
    __u64 bpf_cookie;
    bool retprobe;
    const char *func_name;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, int pid,
                                                 const char *binary_path, size_t func_offset,
                                                 const struct bpf_uprobe_opts *opts);

struct bpf_usdt_opts { size_t sz; __u64 usdt_cookie; ...; };
struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, int pid,
                                          const char *binary_path, const char *usdt_provider,
                                          const char *usdt_name,
                                          const struct bpf_usdt_opts *opts);

struct bpf_tracepoint_opts { size_t sz; __u64 bpf_cookie; ...; };
struct bpf_link *bpf_program__attach_tracepoint_opts(const struct bpf_program *prog,
                                                     const char *tp_category,
                                                     const char *tp_name,
                                                     const struct bpf_tracepoint_opts *opts);

struct bpf_trace_opts { size_t sz; __u64 cookie; ...; };
struct bpf_link *bpf_program__attach_trace_opts(const struct bpf_program *prog,
                                                const struct bpf_trace_opts *opts);
struct bpf_link *bpf_program__attach_lsm(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_netns(const struct bpf_program *prog, int netns_fd);
struct bpf_link *bpf_program__attach_sockmap(const struct bpf_program *prog, int map_fd);
struct bpf_link *bpf_program__attach_freplace(const struct bpf_program *prog, int target_fd,
                                              const char *attach_func_name);

struct bpf_netfilter_opts { size_t sz; __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; ...; };
struct bpf_link *bpf_program__attach_netfilter(const struct bpf_program *prog,
                                               const struct bpf_netfilter_opts *opts);

struct bpf_tcx_opts {
    size_t sz;
    __u32 flags;
    __u32 relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_link *bpf_program__attach_tcx(const struct bpf_program *prog, int ifindex,
                                         const struct bpf_tcx_opts *opts);

struct bpf_netkit_opts {
    size_t sz;
    __u32 flags;
    __u32 relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_link *bpf_program__attach_netkit(const struct bpf_program *prog, int ifindex,
                                            const struct bpf_netkit_opts *opts);

struct bpf_cgroup_opts {
    size_t sz;
    __u32 flags;
    __u32 relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_link *bpf_program__attach_cgroup_opts(const struct bpf_program *prog, int cgroup_fd,
                                                 const struct bpf_cgroup_opts *opts);
struct bpf_link *bpf_map__attach_struct_ops(const struct bpf_map *map);
int bpf_program__set_log_buf(struct bpf_program *prog, char *log_buf, size_t log_size);
const char *bpf_program__log_buf(const struct bpf_program *prog, size_t *log_size);

enum bpf_prog_type bpf_program__type(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, enum bpf_prog_type type);
enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog);
int bpf_program__set_expected_attach_type(struct bpf_program *prog, enum bpf_attach_type type);
__u32 bpf_program__log_level(const struct bpf_program *prog);
int bpf_program__set_log_level(struct bpf_program *prog, __u32 log_level);
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd,
                                   const char *attach_func_name);

int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate);
bool bpf_map__autocreate(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
const char *bpf_map__name(const struct bpf_map *map);
enum bpf_map_type bpf_map__type(const struct bpf_map *map);
int bpf_map__set_type(struct bpf_map *map, enum bpf_map_type type);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
__u32 bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, __u32 flags);
__u32 bpf_map__numa_node(const struct bpf_map *map);
int bpf_map__set_numa_node(struct bpf_map *map, __u32 numa_node);
__u32 bpf_map__key_size(const struct bpf_map *map);
int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__value_size(const struct bpf_map *map);
int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__btf_key_type_id(const struct bpf_map *map);
__u32 bpf_map__btf_value_type_id(const struct bpf_map *map);
void *bpf_map__initial_value(const struct bpf_map *map, size_t *psize);
bool bpf_map__is_internal(const struct bpf_map *map);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
const char *bpf_map__pin_path(const struct bpf_map *map);
int bpf_map__pin(struct bpf_map *map, const char *path);
int bpf_map__unpin(struct bpf_map *map, const char *path);
int bpf_map__set_inner_map_fd(struct bpf_map *map, int fd);

int libbpf_num_possible_cpus(void);

struct bpf_xdp_attach_opts { size_t sz; int old_prog_fd; ...; };
int bpf_xdp_attach(int ifindex, int prog_fd, __u32 flags, const struct bpf_xdp_attach_opts *opts);
int bpf_xdp_detach(int ifindex, __u32 flags, const struct bpf_xdp_attach_opts *opts);

enum bpf_tc_attach_point { BPF_TC_INGRESS, BPF_TC_EGRESS, ... };
struct bpf_tc_hook { size_t sz; int ifindex; enum bpf_tc_attach_point attach_point; ...; };
struct bpf_tc_opts {
    size_t sz;
    int prog_fd;
    __u32 flags;
    __u32 prog_id;
    __u32 handle;
    __u32 priority;
    ...;
};
int bpf_tc_hook_create(struct bpf_tc_hook *hook);
int bpf_tc_hook_destroy(struct bpf_tc_hook *hook);
int bpf_tc_attach(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);
int bpf_tc_detach(const struct bpf_tc_hook *hook, const struct bpf_tc_opts *opts);
int bpf_tc_query(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);

struct user_ring_buffer;
struct user_ring_buffer *user_ring_buffer__new(int map_fd, const void *opts);
void *user_ring_buffer__reserve(struct user_ring_buffer *rb, __u32 size);
void user_ring_buffer__submit(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__free(struct user_ring_buffer *rb);

struct perf_buffer;
struct perf_buffer_opts {
    size_t sz;
    __u32 sample_period;
    ...;
};
void perf_buffer__free(struct perf_buffer *pb);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
int perf_buffer__consume(struct perf_buffer *pb);
int perf_buffer__consume_buffer(struct perf_buffer *pb, size_t buf_idx);
size_t perf_buffer__buffer_cnt(const struct perf_buffer *pb);

int libbpf_probe_bpf_prog_type(enum bpf_prog_type prog_type, const void *opts);
int libbpf_probe_bpf_map_type(enum bpf_map_type map_type, const void *opts);
int libbpf_probe_bpf_helper(enum bpf_prog_type prog_type, int helper_id, const void *opts);

struct bpf_linker_opts { size_t sz; ...; };
struct bpf_linker_file_opts { size_t sz; ...; };
struct bpf_linker;
struct bpf_linker *bpf_linker__new(const char *filename, struct bpf_linker_opts *opts);
int bpf_linker__add_file(struct bpf_linker *linker, const char *filename,
                         const struct bpf_linker_file_opts *opts);
int bpf_linker__finalize(struct bpf_linker *linker);
void bpf_linker__free(struct bpf_linker *linker);
"""

# bpf/bpf.h
BPF_H = """
/* Keys and input values are declared `const char *` where libbpf has `const void *`: cffi
 * then passes a Python bytes object without copying it (the hot path of map access); the
 * C compiler checks the implicit conversion to the real prototype. */
int bpf_map_update_elem(int fd, const char *key, const char *value, __u64 flags);
int bpf_map_lookup_elem(int fd, const char *key, void *value);
int bpf_map_get_next_key(int fd, const char *key, void *next_key);

struct bpf_map_batch_opts {
    size_t sz;
    __u64 elem_flags;
    __u64 flags;
    ...;
};
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
                         __u32 *count, const struct bpf_map_batch_opts *opts);

int bpf_obj_pin(int fd, const char *pathname);
int bpf_obj_get(const char *pathname);

struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u32 inner_map_fd;
    __u32 map_flags;
    __u64 map_extra;
    __u32 numa_node;
    __u32 token_fd;
    ...;
};
int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size,
                   __u32 value_size, __u32 max_entries, const struct bpf_map_create_opts *opts);

int bpf_iter_create(int link_fd);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_map_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_btf_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_link_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_map_get_fd_by_id(__u32 id);
int bpf_btf_get_fd_by_id(__u32 id);
int bpf_link_get_fd_by_id(__u32 id);
int bpf_map_get_info_by_fd(int map_fd, struct bpf_map_info *info, __u32 *info_len);
int bpf_prog_get_info_by_fd(int prog_fd, struct bpf_prog_info *info, __u32 *info_len);
int bpf_btf_get_info_by_fd(int btf_fd, struct bpf_btf_info *info, __u32 *info_len);
int bpf_enable_stats(enum bpf_stats_type type);

struct bpf_test_run_opts {
    size_t sz;
    const void *data_in;
    void *data_out;
    __u32 data_size_in;
    __u32 data_size_out;
    const void *ctx_in;
    void *ctx_out;
    __u32 ctx_size_in;
    __u32 ctx_size_out;
    __u32 retval;
    int repeat;
    __u32 duration;
    __u32 flags;
    __u32 cpu;
    __u32 batch_size;
    ...;
};
int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);

struct bpf_token_create_opts {
    size_t sz;
    __u32 flags;
    ...;
};
int bpf_token_create(int bpffs_fd, struct bpf_token_create_opts *opts);
"""

# bpf/btf.h
BTF_H = """
void btf__free(struct btf *btf);
struct btf_ext;
struct btf *btf__parse(const char *path, struct btf_ext **btf_ext);
struct btf *btf__load_vmlinux_btf(void);
struct btf *btf__load_from_kernel_by_id(__u32 id);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
__u32 btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);

__u16 btf_kind(const struct btf_type *t);
__u16 btf_vlen(const struct btf_type *t);
bool btf_kflag(const struct btf_type *t);
__u8 btf_int_encoding(const struct btf_type *t);
struct btf_array *btf_array(const struct btf_type *t);
struct btf_enum *btf_enum(const struct btf_type *t);
struct btf_enum64 *btf_enum64(const struct btf_type *t);
__u64 btf_enum64_value(const struct btf_enum64 *e);
struct btf_member *btf_members(const struct btf_type *t);
__u32 btf_member_bit_offset(const struct btf_type *t, __u32 member_idx);
__u32 btf_member_bitfield_size(const struct btf_type *t, __u32 member_idx);
struct btf_param *btf_params(const struct btf_type *t);
struct btf_var *btf_var(const struct btf_type *t);
struct btf_var_secinfo *btf_var_secinfos(const struct btf_type *t);
struct btf_decl_tag *btf_decl_tag(const struct btf_type *t);
"""

# ffi_build/shim_*.c: what cffi cannot express (va_list callbacks) and the Python sinks.
SHIM = """
extern "Python" void _tinybpf_log_sink(int level, const char *msg);

void tinybpf_set_print_level(int level);

struct tinybpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    __u32 attach_type;
    __u32 ifindex;
    __u32 netns_ino;
    __u64 cgroup_id;
    __u32 pf;
    __u32 hooknum;
    __s32 priority;
    __u32 map_id;
    char target_name[...];
    ...;
};
int tinybpf_link_info(int link_fd, struct tinybpf_link_info *out);
struct bpf_link *tinybpf_attach_iter(const struct bpf_program *prog, int map_fd, int cgroup_fd,
                                     int cgroup_order, __u32 tid, __u32 pid, __u32 pid_fd);
int tinybpf_auto_attach(struct bpf_program *prog, struct bpf_link **link);
int tinybpf_perf_event_open(__u32 type, __u64 config, int pid, int cpu, __u64 sample,
                            int use_freq, int wakeup_events);
struct tinybpf_batch {
    char *data;
    size_t len;
    size_t cap;
    __u32 *sizes;
    __u32 *cpus;
    size_t count;
    size_t sizes_cap;
    size_t max_events;
    __u32 trim;
    __u64 lost;
    int err;
    __u32 uniform;
    __u32 lost_records;
    __u32 cpu0;
    __u32 detail;
    ...;
};
#define TINYBPF_LOST_FLAG ...
struct perf_buffer *tinybpf_batch_perf_new(int map_fd, size_t page_cnt, struct tinybpf_batch *b,
                                           const struct perf_buffer_opts *opts);
void tinybpf_batch_take(struct tinybpf_batch *b, char **data, __u32 **sizes, __u32 **cpus);
struct tinybpf_ring_reader;
struct tinybpf_ring_reader *tinybpf_ring_reader_new(struct tinybpf_batch *b);
int tinybpf_ring_reader_add(struct tinybpf_ring_reader *r, int map_fd, __u32 idx);
long tinybpf_ring_reader_consume(struct tinybpf_ring_reader *r);
long tinybpf_ring_reader_poll(struct tinybpf_ring_reader *r, int timeout_ms);
int tinybpf_ring_reader_epoll_fd(const struct tinybpf_ring_reader *r);
void tinybpf_ring_reader_free(struct tinybpf_ring_reader *r);
void tinybpf_batch_free(struct tinybpf_batch *b);
int tinybpf_setns(int fd, int nstype);
int tinybpf_ns_type(int fd);
const char *tinybpf_libbpf_release(void);
size_t tinybpf_object_index(const struct bpf_object *obj, char *buf, size_t cap);
struct tinybpf_open_result {
    int stage;
    __u32 bad_id;
    char *log;
    size_t log_len;
    size_t index_len;
    char index[...];
    ...;
};
#define TINYBPF_INDEX_CAP ...
#define TINYBPF_OPEN_FAILED ...
#define TINYBPF_BTF_INVALID ...
#define TINYBPF_LOAD_FAILED ...
#define TINYBPF_NOT_REGULAR ...
struct bpf_object *tinybpf_open_object(const char *path, const void *data, size_t size,
                                       const struct bpf_object_open_opts *opts, int load,
                                       struct tinybpf_open_result *res);
/* map element operations borrow the fd through a handle a close revokes (shim_maps.c); keys
 * and input values are `const char *` for the reason given at bpf/bpf.h above */
struct tinybpf_fd { int fd; ...; };
#define TINYBPF_CLOSED ...
void tinybpf_fd_revoke(struct tinybpf_fd *h);
int tinybpf_map_lookup(struct tinybpf_fd *h, const char *key, void *value, __u64 flags);
int tinybpf_map_update(struct tinybpf_fd *h, const char *key, const char *value, __u64 flags);
int tinybpf_map_delete(struct tinybpf_fd *h, const char *key);
int tinybpf_map_lookup_and_delete(struct tinybpf_fd *h, const char *key, void *value);
int tinybpf_map_get_next_key(struct tinybpf_fd *h, const char *key, void *next);
int tinybpf_map_lookup_batch(struct tinybpf_fd *h, int delete, void *in_batch, void *out_batch,
                             void *keys, void *values, __u32 *count);
int tinybpf_map_update_batch(struct tinybpf_fd *h, const void *keys, const void *values,
                             __u32 *count, const struct bpf_map_batch_opts *opts);
int tinybpf_map_delete_batch(struct tinybpf_fd *h, const void *keys, __u32 *count);
int tinybpf_map_freeze(struct tinybpf_fd *h);
/* read-ahead of batch lookups on a thread (shim_maps.c) */
struct tinybpf_batch_reader;
#define TINYBPF_READER_FORKED ...
struct tinybpf_batch_reader *tinybpf_batch_reader_new(struct tinybpf_fd *h, __u32 key_size,
                                                      __u32 value_size, __u32 chunk,
                                                      __u32 max_chunk, const void *token,
                                                      __u32 token_size);
int tinybpf_batch_reader_next(struct tinybpf_batch_reader *r, char **keys, char **values,
                              __u32 *count);
void tinybpf_batch_reader_free(struct tinybpf_batch_reader *r);
int tinybpf_lookup_scalar(struct tinybpf_fd *h, __s64 key, int key_size, int is_signed,
                          void *value);
int tinybpf_update_scalar(struct tinybpf_fd *h, __s64 key, int key_size, int is_signed,
                          const void *value, __u64 flags);
int tinybpf_update_ints(struct tinybpf_fd *h, __s64 spec, __s64 key, __s64 value);
#define TINYBPF_LOOKUP_AGAIN ...
__s64 tinybpf_lookup_ints_s(struct tinybpf_fd *h, __s64 spec, __s64 key);
__u64 tinybpf_lookup_ints_u(struct tinybpf_fd *h, __s64 spec, __s64 key);
#define CLONE_NEWNET ...
#define TINYBPF_PERF_TYPE_SOFTWARE ...
#define TINYBPF_PERF_COUNT_SW_CPU_CLOCK ...
int tinybpf_btf_dump_c(const struct btf *btf, char **out, size_t *len);
int tinybpf_btf_check(const struct btf *btf, __u32 *bad_id);
#define TINYBPF_BTF_MAX_DEPTH ...
#define TINYBPF_BTF_MAX_COST ...
void tinybpf_free(void *p);
"""

CDEF = "\n".join([TYPES, UAPI_ENUMS, UAPI, LIBBPF_H, BPF_H, BTF_H, SHIM])
