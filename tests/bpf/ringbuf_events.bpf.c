// SPDX-License-Identifier: GPL-2.0
/*
 * Ring buffer fixture for tests/test_ringbuf.py and tests/test_buffers_async.py.
 *
 * One tracepoint program on getppid(2). It only emits when the calling
 * process is the one whose tgid the test wrote into cfg[0].pid, so events
 * come from the test process alone. Per trigger it emits cfg.burst events
 * into each ring buffer selected by cfg.targets. Reserve failures are
 * counted in the stats map (one slot per ring buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define TARGET_EVENTS  1   /* events:  struct event, 256 KiB */
#define TARGET_EVENTS2 2   /* events2: struct event2, 64 KiB */
#define TARGET_SMALL   4   /* small:   struct event, 4 KiB (overflows) */
#define TARGET_DISCARD 8   /* events:  every odd record is reserved then discarded */
#define MAX_BURST      4096

#define STAT_SMALL_FAIL   0
#define STAT_EVENTS_FAIL  1
#define STAT_EVENTS2_FAIL 2
#define STAT_TRIGGERS     3

struct event {
	__u32 pid;
	__u32 seq;
	__u64 ts;
	char comm[16];
};

struct event2 {
	__u32 pid;
	__u32 seq;
	__u64 value;
};

struct rb_config {
	__u32 pid;
	__u32 burst;
	__u32 targets;
	__u32 tag;
};

/* BTF anchors: keep both event structs in the object's BTF. */
struct event _event_btf __attribute__((unused));
struct event2 _event2_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rb_config);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} small SEC(".maps");

/* Sequence numbers, shared by all ring buffers; only the test process triggers. */
__u32 seq_counter = 0;

struct loop_ctx {
	__u32 pid;
	__u32 targets;
	__u32 tag;
};

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 next_seq(void)
{
	__u32 s = seq_counter;

	seq_counter = s + 1;
	return s;
}

static __always_inline void fill(struct event *e, __u32 pid)
{
	e->pid = pid;
	e->seq = next_seq();
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static long emit_one(__u32 index, void *data)
{
	struct loop_ctx *lc = data;
	struct event *e;
	struct event2 *e2;

	if (lc->targets & TARGET_EVENTS) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			fill(e, lc->pid);
			bpf_ringbuf_submit(e, 0);
		} else {
			count(STAT_EVENTS_FAIL);
		}
	}
	if (lc->targets & TARGET_DISCARD) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			fill(e, lc->pid);
			if (index & 1)
				bpf_ringbuf_discard(e, 0);
			else
				bpf_ringbuf_submit(e, 0);
		} else {
			count(STAT_EVENTS_FAIL);
		}
	}
	if (lc->targets & TARGET_EVENTS2) {
		e2 = bpf_ringbuf_reserve(&events2, sizeof(*e2), 0);
		if (e2) {
			e2->pid = lc->pid;
			e2->seq = next_seq();
			e2->value = (__u64)lc->tag + index;
			bpf_ringbuf_submit(e2, 0);
		} else {
			count(STAT_EVENTS2_FAIL);
		}
	}
	if (lc->targets & TARGET_SMALL) {
		e = bpf_ringbuf_reserve(&small, sizeof(*e), 0);
		if (e) {
			fill(e, lc->pid);
			bpf_ringbuf_submit(e, 0);
		} else {
			count(STAT_SMALL_FAIL);
		}
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 zero = 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct rb_config *c = bpf_map_lookup_elem(&cfg, &zero);
	struct loop_ctx lc = {};
	__u32 burst;

	if (!c || c->pid == 0 || c->pid != tgid)
		return 0;
	count(STAT_TRIGGERS);
	burst = c->burst;
	if (burst > MAX_BURST)
		burst = MAX_BURST;
	lc.pid = tgid;
	lc.targets = c->targets;
	lc.tag = c->tag;
	bpf_loop(burst, emit_one, &lc, 0);
	return 0;
}
