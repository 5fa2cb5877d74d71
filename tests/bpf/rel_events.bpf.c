// SPDX-License-Identifier: GPL-2.0
/*
 * Reliability fixture (tests/test_reliability_*.py): event producers driven by
 * BPF_PROG_TEST_RUN, so a test makes exactly the number of events it asks for,
 * without syscalls or tracepoints.
 *
 *   produce_ring  SEC("syscall"): args->n records of struct rel_event into rb
 *                 (args->which == 1: into the 4 KiB ring "tiny" instead), with
 *                 seq = args->start + index. A failed bpf_ringbuf_reserve() is
 *                 counted in the per-CPU array ring_drops[0] (the pattern that
 *                 makes ring buffer drops countable, docs/reliability.md).
 *   produce_perf  SEC("raw_tp"): ctx[0] samples into the perf event array pb,
 *                 seq = ctx[1] + index; a failed bpf_perf_event_output() is
 *                 counted in perf_drops[0]. (bpf_perf_event_output is not
 *                 allowed in syscall programs.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct rel_event {
	__u64 seq;
	__u64 tag;
};

struct rel_event _rel_event_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tiny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ring_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} perf_drops SEC(".maps");

/* a plain hash for the misuse and concurrency tests */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} h1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} h2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} a1 SEC(".maps");

__u64 produced_total = 0;
const volatile __u32 rel_magic = 7;

struct produce_args {
	__u32 n;
	__u32 which;
	__u64 start;
};

struct ring_ctx {
	__u64 start;
	__u32 which;
};

static __always_inline void count_drop(void *map)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(map, &zero);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

static long emit_ring(__u32 index, void *data)
{
	struct ring_ctx *rc = data;
	struct rel_event *e;

	if (rc->which == 1)
		e = bpf_ringbuf_reserve(&tiny, sizeof(*e), 0);
	else
		e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e) {
		count_drop(&ring_drops);
		return 0;
	}
	e->seq = rc->start + index;
	e->tag = 0x52454c;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("syscall")
int produce_ring(struct produce_args *args)
{
	struct ring_ctx rc = { .start = args->start, .which = args->which };

	bpf_loop(args->n, emit_ring, &rc, 0);
	__sync_fetch_and_add(&produced_total, args->n);
	return 0;
}

struct perf_ctx {
	void *ctx;
	__u64 start;
};

static long emit_perf(__u32 index, void *data)
{
	struct perf_ctx *pc = data;
	struct rel_event e = { .seq = pc->start + index, .tag = 0x52454c };

	if (bpf_perf_event_output(pc->ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e)))
		count_drop(&perf_drops);
	return 0;
}

SEC("raw_tp")
int produce_perf(__u64 *ctx)
{
	struct perf_ctx pc = { .ctx = ctx, .start = ctx[1] };

	bpf_loop(ctx[0], emit_perf, &pc, 0);
	return 0;
}
