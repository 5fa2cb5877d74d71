// SPDX-License-Identifier: GPL-2.0
/*
 * Map fixture for tests/test_maps_full.py: batch operations, per-CPU values seen on each
 * CPU, queue/stack, bpf_spin_lock values, frozen maps, LPM trie and bloom filter looked up
 * by a program, an mmapable array, a user ring buffer and a log2 histogram.
 *
 * Tracing programs only act for the thread whose id the test stores in mf_tid[0].
 * SYSCALL programs run through BPF_PROG_TEST_RUN; their context is written back to the
 * caller, so they return what they saw in it. XDP programs (for the map types sleepable
 * programs cannot use) read their input from the packet and write their answer into it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct lval {
	struct bpf_spin_lock lock;
	__u32 tag;
	__u64 a;
	__u64 b; /* always 2 * a when read under the lock */
};

struct lpm_v4 {
	__u32 prefixlen;
	__u8 data[4];
};

/* ---- batch operations and iteration */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 100000);
	__type(key, __u32);
	__type(value, __u64);
} mf_big SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 100000);
	__type(key, __u32);
	__type(value, __u64);
} mf_big_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} mf_pcpu_hash SEC(".maps");

/* ---- tracing filter: mf_tid[0] = thread id of the test thread */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mf_tid SEC(".maps");

/* ---- per-CPU: the program copies this CPU's mf_pcpu_in[0] into mf_seen[cpu] */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mf_pcpu_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} mf_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mf_pcpu_cnt SEC(".maps");

/* ---- queue / stack */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} mf_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} mf_stack SEC(".maps");

/* ---- bpf_spin_lock */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct lval);
} mf_locked SEC(".maps");

/* ---- frozen */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} mf_frozen SEC(".maps");

/* ---- LPM trie, bloom filter */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} mf_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} mf_trie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1000);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(value, __u32);
} mf_bloom SEC(".maps");

/* ---- mmapable array (512 * 8 bytes: one page) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} mf_mmap SEC(".maps");

/* ---- user ring buffer */
struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 256 * 1024);
} mf_urb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} mf_urb_small SEC(".maps");

/* ---- log2 histogram */
#define MAX_SLOTS 32
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} mf_hist SEC(".maps");

static __always_inline int is_target(void)
{
	__u32 zero = 0;
	__u32 *tid = bpf_map_lookup_elem(&mf_tid, &zero);

	return tid && *tid != 0 && *tid == (__u32)bpf_get_current_pid_tgid();
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int percpu_copy(void *ctx)
{
	__u32 zero = 0, cpu;
	__u64 *in, *cnt;

	if (!is_target())
		return 0;
	cpu = bpf_get_smp_processor_id();
	in = bpf_map_lookup_elem(&mf_pcpu_in, &zero);
	if (in)
		bpf_map_update_elem(&mf_seen, &cpu, in, BPF_ANY);
	cnt = bpf_map_lookup_elem(&mf_pcpu_cnt, &zero);
	if (cnt)
		*cnt += 1;
	return 0;
}

/* ---- queue / stack from a program */
struct seq_args {
	__u32 start;
	__u32 n;
	__s32 err; /* out: first push error */
};

SEC("syscall")
int push_seq(struct seq_args *args)
{
	__u32 i, v, start = args->start, n = args->n;
	long err;

	args->err = 0;
	for (i = 0; i < 16; i++) {
		if (i >= n)
			break;
		v = start + i;
		err = bpf_map_push_elem(&mf_queue, &v, 0);
		if (!err)
			err = bpf_map_push_elem(&mf_stack, &v, 0);
		if (err) {
			args->err = err;
			break;
		}
	}
	return 0;
}

struct pop_args {
	__u32 from_queue;
	__u32 from_stack;
	__s32 queue_err;
	__s32 stack_err;
};

SEC("syscall")
int pop_both(struct pop_args *args)
{
	__u32 v = 0;

	args->queue_err = bpf_map_pop_elem(&mf_queue, &v);
	args->from_queue = v;
	v = 0;
	args->stack_err = bpf_map_pop_elem(&mf_stack, &v);
	args->from_stack = v;
	return 0;
}

/* ---- bpf_spin_lock: one increment of a and two of b under the lock per run */
SEC("xdp")
int lock_inc(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct lval *v = bpf_map_lookup_elem(&mf_locked, &zero);

	if (!v)
		return XDP_ABORTED;
	bpf_spin_lock(&v->lock);
	v->a += 1;
	v->b += 2;
	bpf_spin_unlock(&v->lock);
	return XDP_PASS;
}

/* ---- frozen map: read (and write) from a program */
struct frozen_args {
	__u32 idx;
	__u32 found;
	__u64 value; /* in: written when write != 0; out: the value read */
	__u32 write;
	__u32 pad;
};

SEC("syscall")
int frozen_access(struct frozen_args *args)
{
	__u32 idx = args->idx;
	__u64 *v = bpf_map_lookup_elem(&mf_frozen, &idx);

	if (!v) {
		args->found = 0;
		return 0;
	}
	args->found = 1;
	if (args->write)
		*v = args->value;
	args->value = *v;
	return 0;
}

/* ---- LPM trie: packet bytes 0..3 are an IPv4 address; bytes 4..7 get the value
 * (0xffffffff when no prefix matches) */
SEC("xdp")
int lpm_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lpm_v4 key = { .prefixlen = 32 };
	__u32 *out = data + 4;
	__u32 *v;

	if (data + 8 > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(key.data, data, 4);
	v = bpf_map_lookup_elem(&mf_lpm, &key);
	*out = v ? *v : 0xffffffff;
	return XDP_PASS;
}

/* ---- bloom filter: packet u32 op (0 check, 1 add), u32 value; u32 result (the helper's
 * return value) */
SEC("xdp")
int bloom_op(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *p = data;
	__u32 value;

	if (data + 12 > data_end)
		return XDP_ABORTED;
	value = p[1];
	if (p[0] == 1)
		p[2] = (__u32)bpf_map_push_elem(&mf_bloom, &value, 0);
	else
		p[2] = (__u32)bpf_map_peek_elem(&mf_bloom, &value);
	return XDP_PASS;
}

/* ---- mmapable array: out = mf_mmap[idx], then mf_mmap[idx] = value when value != 0 */
struct mmap_args {
	__u32 idx;
	__u32 found;
	__u64 value;
	__u64 out;
};

SEC("syscall")
int mmap_access(struct mmap_args *args)
{
	__u32 idx = args->idx;
	__u64 *v = bpf_map_lookup_elem(&mf_mmap, &idx);

	args->found = v != 0;
	if (!v)
		return 0;
	args->out = *v;
	if (args->value)
		*v = args->value;
	return 0;
}

/* ---- user ring buffer: sum the u64 samples */
struct drain_args {
	__u64 sum;
	__u64 count;
	__s64 ret;
	__u64 bad; /* samples shorter than 8 bytes */
	__u32 small; /* drain mf_urb_small instead of mf_urb */
	__u32 pad;
};

struct drain_ctx {
	__u64 sum;
	__u64 count;
	__u64 bad;
};

static long drain_one(struct bpf_dynptr *dynptr, void *data)
{
	struct drain_ctx *c = data;
	__u64 v = 0;

	if (bpf_dynptr_read(&v, sizeof(v), dynptr, 0, 0)) {
		c->bad++;
		return 0;
	}
	c->sum += v;
	c->count++;
	return 0;
}

SEC("syscall")
int drain_urb(struct drain_args *args)
{
	struct drain_ctx c = {};

	if (args->small)
		args->ret = bpf_user_ringbuf_drain(&mf_urb_small, drain_one, &c, 0);
	else
		args->ret = bpf_user_ringbuf_drain(&mf_urb, drain_one, &c, 0);
	args->sum = c.sum;
	args->count = c.count;
	args->bad = c.bad;
	return 0;
}

/* ---- log2 histogram (libbpf-tools' log2l: clang 14 cannot compile clz for BPF) */
static __always_inline __u64 log2_u32(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32;

	if (hi)
		return log2_u32(hi) + 32;
	return log2_u32(v);
}

struct hist_args {
	__u64 value;
	__u32 slot; /* out */
	__u32 pad;
};

SEC("syscall")
int hist_add(struct hist_args *args)
{
	__u32 slot = log2l(args->value);
	__u64 *c;

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	args->slot = slot;
	c = bpf_map_lookup_elem(&mf_hist, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}
