// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark object shared by the C baseline (bench/c/bench_c.c) and tinybpf
 * (bench/tinybpf_bench.py).
 *
 * Maps:   h10k  u32 -> u64 hash, 10k entries   (single lookups/updates)
 *         h100k u32 -> u64 hash, 100k entries  (iteration)
 *         marr  u32 -> u64 array, 10k entries, BPF_F_MMAPABLE (mapped access)
 *         parr  u32 -> u64 array, 10k entries (the same through syscalls)
 *         rb    64 MiB ring buffer             (ring buffer workloads)
 *         pb    perf event array               (perf buffer workloads)
 * Producers, run through BPF_PROG_TEST_RUN so no syscall loop is needed:
 *         produce_ring  SEC("syscall"): ctx->n events of 32 bytes into rb (bpf_loop)
 *         produce_perf  SEC("raw_tp"):  ctx[0] events of 32 bytes into pb
 *                       (bpf_perf_event_output is not allowed in syscall programs)
 * Each producer counts the events it could not write in drops[0].
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	__u32 pid;
	__u32 seq;
	__u64 ts;
	__u64 a;
	__u64 b;
};

struct event _event_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10000);
	__type(key, __u32);
	__type(value, __u64);
} h10k SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 100000);
	__type(key, __u32);
	__type(value, __u64);
} h100k SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 10000);
	__type(key, __u32);
	__type(value, __u64);
} marr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10000);
	__type(key, __u32);
	__type(value, __u64);
} parr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

/* drops[0]: events a producer could not write (ring full / perf output failed) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

__u32 seq_counter = 0;

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&drops, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
}

struct produce_args {
	__u64 n;
};

static long emit_ring(__u32 index, void *data)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);

	if (!e) {
		count_drop();
		return 0;
	}
	e->pid = 1;
	e->seq = seq_counter++;
	e->ts = index;
	e->a = 0;
	e->b = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("syscall")
int produce_ring(struct produce_args *args)
{
	bpf_loop(args->n, emit_ring, NULL, 0);
	return 0;
}

struct perf_loop_ctx {
	void *ctx;
};

static long emit_perf(__u32 index, void *data)
{
	struct perf_loop_ctx *lc = data;
	struct event e = {};

	e.pid = 1;
	e.seq = seq_counter++;
	e.ts = index;
	if (bpf_perf_event_output(lc->ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e)))
		count_drop();
	return 0;
}

SEC("raw_tp")
int produce_perf(__u64 *ctx)
{
	struct perf_loop_ctx lc = { .ctx = ctx };

	bpf_loop(ctx[0], emit_perf, &lc, 0);
	return 0;
}
