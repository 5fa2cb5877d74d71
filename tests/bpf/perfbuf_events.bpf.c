// SPDX-License-Identifier: GPL-2.0
/*
 * Perf buffer fixture for tests/test_perfbuf.py and tests/test_buffers_async.py.
 *
 * One tracepoint program on getppid(2), emitting cfg.burst samples per call,
 * only for the process whose tgid the test wrote into cfg[0].pid.
 *
 * struct event is 32 bytes: the kernel stores it as a raw sample of
 * 4 (size) + 32 bytes, rounded up to 40, so every sample carries 4 bytes of
 * alignment padding that the kernel skips without zeroing, and every record
 * takes 48 bytes. 4096 is not a multiple of 48, so once a one-page ring has
 * wrapped the padding lies over stale bytes of earlier samples (the first
 * generation's defect W4).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_BURST 4096

struct event {
	__u32 pid;
	__u32 seq;
	__u64 ts;
	char comm[16];
};

struct pb_config {
	__u32 pid;
	__u32 burst;
};

struct event _event_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pb_config);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} not_perf SEC(".maps");

/* Samples that bpf_perf_event_output could not write (ring full). */
__u64 output_failures = 0;
__u32 seq_counter = 0;

struct loop_ctx {
	void *ctx;
	__u32 pid;
};

static long emit_one(__u32 index, void *data)
{
	struct loop_ctx *lc = data;
	struct event e = {};
	__u32 s = seq_counter;

	seq_counter = s + 1;
	e.pid = lc->pid;
	e.seq = s;
	e.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (bpf_perf_event_output(lc->ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e)))
		output_failures++;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 zero = 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pb_config *c = bpf_map_lookup_elem(&cfg, &zero);
	struct loop_ctx lc = {};
	__u32 burst;

	if (!c || c->pid == 0 || c->pid != tgid)
		return 0;
	burst = c->burst;
	if (burst > MAX_BURST)
		burst = MAX_BURST;
	lc.ctx = ctx;
	lc.pid = tgid;
	bpf_loop(burst, emit_one, &lc, 0);
	return 0;
}
