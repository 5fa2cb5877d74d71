// SPDX-License-Identifier: GPL-2.0
// Map fixture for tests/test_map.py, tests/test_map_types.py and tests/test_pinning.py.
//
// Every program is filtered on the thread id the test stores in cfg[0] (never on a global),
// so unrelated system activity never changes what a test observes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 my_id_t;
typedef __s64 my_val_t;

struct rec {
	__u32 id;
	__s32 delta;
	__u64 ts;
	char comm[16];
};

typedef struct {
	__u16 a;
	__u16 b;
	__u32 c;
} pair_t;

struct lpm_key {
	__u32 prefixlen;
	__u8 data[4];
};

/* cfg[0] = thread id of the test thread that programs count for */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

/* hash u32 -> u64: getpid calls per tgid */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* array u32 -> u64 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

/* signed typedefs: __s32 -> __s64 (W3) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __s32);
	__type(value, __s64);
} signed_map SEC(".maps");

/* struct value */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct rec);
} struct_map SEC(".maps");

/* BTF FLOAT values */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, double);
} dbl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, float);
} flt SEC(".maps");

/* per-CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} lru_pcpu SEC(".maps");

/* per-CPU input written by the test, read by the program on the CPU it runs on */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_in SEC(".maps");

/* seen[cpu] = the value of pcpu_in[0] the program read on that cpu */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} stack SEC(".maps");

/* tiny hash for E2BIG */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} small SEC(".maps");

/* typedef'd key and values */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, my_id_t);
	__type(value, my_val_t);
} tdef_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, my_id_t);
	__type(value, pair_t);
} pair_map SEC(".maps");

/* sizes only: no BTF key/value type ids */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__uint(key_size, 4);
	__uint(value_size, 8);
} nobtf SEC(".maps");

/* map in map */
struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a },
};

static __always_inline int is_target(void)
{
	__u32 zero = 0;
	__u32 *tid = bpf_map_lookup_elem(&cfg, &zero);
	__u32 cur = (__u32)bpf_get_current_pid_tgid();

	return tid && *tid != 0 && *tid == cur;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 tgid, zero = 0, cpu;
	__u64 one = 1, *v, *in;
	__s32 skey = -1;
	__s64 sone = -1, *sv;
	struct rec r = {};
	__u32 q;

	if (!is_target())
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;

	v = bpf_map_lookup_elem(&counts, &tgid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &tgid, &one, BPF_NOEXIST);

	/* signed_map[-1] goes down by one per call: negative key and value (W3) */
	sv = bpf_map_lookup_elem(&signed_map, &skey);
	if (sv)
		__sync_fetch_and_add(sv, -1);
	else
		bpf_map_update_elem(&signed_map, &skey, &sone, BPF_NOEXIST);

	/* struct_map[tgid] = latest call */
	r.id = tgid;
	r.delta = -(__s32)tgid;
	r.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(r.comm, sizeof(r.comm));
	bpf_map_update_elem(&struct_map, &tgid, &r, BPF_ANY);

	v = bpf_map_lookup_elem(&pcpu_hash, &zero);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&pcpu_hash, &zero, &one, BPF_NOEXIST);

	v = bpf_map_lookup_elem(&pcpu_arr, &zero);
	if (v)
		*v += 1;

	in = bpf_map_lookup_elem(&pcpu_in, &zero);
	if (in) {
		cpu = bpf_get_smp_processor_id();
		bpf_map_update_elem(&seen, &cpu, in, BPF_ANY);
	}

	q = tgid;
	bpf_map_push_elem(&queue, &q, BPF_EXIST);
	bpf_map_push_elem(&stack, &q, BPF_EXIST);
	return 0;
}
