// SPDX-License-Identifier: GPL-2.0
/*
 * BTF-typed data fixture for tests/test_btf_types.py, tests/test_globals.py and
 * tests/test_codegen.py: structs with nested structs, arrays, bitfields, enums, unions
 * and anonymous members, as map keys and values, as ring/perf buffer events and as
 * global variables of every kind.
 *
 * One tracepoint program on getpid(2). When the caller's tgid is target_pid (set before
 * load) it fills one struct event with known values (see fill_event) and sends it to the
 * ring buffer and the perf buffer, updates the stats map and the .bss globals.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

enum op_kind {
	TOP_NONE = 0,
	TOP_READ = 1,
	TOP_WRITE = 2,
	TOP_EXEC = 4,
};

enum level {
	TLVL_LOW = -1,
	TLVL_MID = 0,
	TLVL_HIGH = 1,
};

struct task_id {
	__u32 pid;
	__u32 tid;
};

struct bits {
	__u32 kind : 4;
	__u32 level : 3;
	__u32 on : 1;
	__u32 rest : 24;
	__u16 after;
	__s8 small : 4; /* signed bitfield */
};

union value {
	__u64 u;
	__s64 s;
	__u8 bytes[8];
};

/* anonymous members: a union holding a struct of bitfields, and a plain anonymous struct */
struct word {
	union {
		__u32 raw;
		struct {
			__u32 lo : 12;
			__u32 hi : 20;
		};
	};
	struct {
		__u16 a;
		__u16 b;
	};
};

/* own bitfields next to an anonymous member that has bitfields of its own */
struct mixed {
	__u32 a : 4;
	__u32 b : 4;
	union {
		__u32 x;
		struct {
			__u32 lo : 4;
			__u32 hi : 28;
		};
	};
};

typedef struct {
	__u32 x;
	__u16 y;
} point_t;

struct event {
	struct task_id task;
	enum op_kind op;
	struct bits flags;
	char comm[16];
	__u64 args[3];
	struct task_id peers[2];
	__s16 delta;
	__u8 raw[3];
	union value val;
	__u32 matrix[2][3];
	point_t where;
	enum level lvl;
	bool ok;
};

struct stat_value {
	__u64 count;
	enum op_kind last_op;
	struct bits flags;
	char comm[16];
};

/* keep the event and the anonymous-member struct in BTF (in .rodata: no extra storage) */
const struct event *const event_anchor __attribute__((used)) = 0;
const struct word *const word_anchor __attribute__((used)) = 0;

/* configuration */
const volatile __u32 target_pid = 0;
const volatile enum op_kind want_op = TOP_READ;
const volatile char prefix[8] = "ev";

/* .data: initialised */
__s32 neg = -5;
char greeting[8] = "hi";
float ratio = 1.5f;
double precise = -2.25;

/* more BTF kinds: a declaration tag, a type tag, a restrict pointer, a forward declaration */
__u32 tagged_var __attribute__((btf_decl_tag("tinybpf_tag")));
__u32 __attribute__((btf_type_tag("tinybpf_user"))) *tagged_ptr;
__u32 *__restrict restrict_ptr;
struct fwd_only *fwd_ptr;

/* .bss: written by the program, read live */
struct task_id last_task;
enum op_kind last_op;
__s8 s8v;
__u16 u16v;
__s64 s64v;
bool flag;
char letter;
char name[16];
__u32 arr[4];
struct task_id tasks[2];
__u64 event_count;
struct bits last_bits;
struct word last_word;
struct mixed last_mixed;
__u32 grid[2][2];
unsigned __int128 wide;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct task_id);
	__type(value, struct stat_value);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bits);
} bits_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, enum op_kind);
	__type(value, __s64);
} op_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct word);
} words SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

static __always_inline void fill_bits(struct bits *b)
{
	b->kind = 3;
	b->level = 5;
	b->on = 1;
	b->rest = 0xABCDE;
	b->after = 0x1234;
	b->small = -3;
}

static __always_inline void fill_event(struct event *e, __u32 pid, __u32 tid)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->task.pid = pid;
	e->task.tid = tid;
	e->op = want_op;
	fill_bits(&e->flags);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->args[0] = 1;
	e->args[1] = 2;
	e->args[2] = 3;
	e->peers[0].pid = 10;
	e->peers[0].tid = 11;
	e->peers[1].pid = 20;
	e->peers[1].tid = 21;
	e->delta = -7;
	e->raw[0] = 1;
	e->raw[1] = 2;
	e->raw[2] = 3;
	e->val.s = -42;
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++)
			e->matrix[i][j] = i * 10 + j;
	e->where.x = 99;
	e->where.y = 7;
	e->lvl = TLVL_LOW;
	e->ok = true;
}

SEC("tp/syscalls/sys_enter_getpid")
int record(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0;
	struct stat_value init = {}, *sv;
	struct task_id key = {};
	struct event *e, local;
	enum op_kind op = want_op;
	__s64 one = 1, *oc;

	if (pid != target_pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		fill_event(e, pid, tid);
		bpf_ringbuf_submit(e, 0);
	}
	fill_event(&local, pid, tid);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &local, sizeof(local));

	key.pid = pid;
	key.tid = tid;
	sv = bpf_map_lookup_elem(&stats, &key);
	if (!sv) {
		bpf_map_update_elem(&stats, &key, &init, BPF_NOEXIST);
		sv = bpf_map_lookup_elem(&stats, &key);
		if (!sv)
			return 0;
	}
	sv->count++;
	sv->last_op = op;
	fill_bits(&sv->flags);
	bpf_get_current_comm(sv->comm, sizeof(sv->comm));

	oc = bpf_map_lookup_elem(&op_counts, &op);
	if (oc)
		__sync_fetch_and_add(oc, 1);
	else
		bpf_map_update_elem(&op_counts, &op, &one, BPF_NOEXIST);

	struct bits *bm = bpf_map_lookup_elem(&bits_map, &zero);
	if (bm)
		fill_bits(bm);
	struct word *w = bpf_map_lookup_elem(&words, &zero);
	if (w) {
		w->lo = 0xABC;
		w->hi = 0x12345;
		w->a = 1;
		w->b = 2;
	}

	last_task = key;
	last_op = op;
	s8v = -8;
	u16v = 65535;
	s64v = -1234567890123LL;
	flag = true;
	letter = 'Z';
	bpf_get_current_comm(name, sizeof(name));
	for (int i = 0; i < 4; i++)
		arr[i] = i + 1;
	tasks[1] = key;
	__sync_fetch_and_add(&event_count, 1);
	fill_bits(&last_bits);
	last_word.lo = 0x123;
	last_word.hi = 0xFFFFF;
	last_word.a = 5;
	last_word.b = 6;
	grid[1][0] = 42;
	last_mixed.a = 3;
	last_mixed.b = 5;
	last_mixed.x = 0xABCDEF01;
	return 0;
}
