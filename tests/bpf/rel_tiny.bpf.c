// SPDX-License-Identifier: GPL-2.0
// Reliability fixture (tests/test_reliability_resources.py): the smallest tracepoint object
// for open/load/attach/detach/close cycles. Two programs on getpid(2): a classic tracepoint
// (perf-event based; detaching it waits for an RCU grace period in the kernel) and a raw
// tracepoint. Both count calls of the process whose tgid is in cfg[0].
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} cnt SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u32 zero = 0;
	__u64 *want = bpf_map_lookup_elem(&cnt, &zero);
	__u64 *c;

	if (!want || *want != (bpf_get_current_pid_tgid() >> 32))
		return;
	c = bpf_map_lookup_elem(&cnt, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tp/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	hit(1);
	return 0;
}

SEC("raw_tp/task_rename")
int raw_rename(void *ctx)
{
	hit(1);
	return 0;
}
