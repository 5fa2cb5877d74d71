// SPDX-License-Identifier: GPL-2.0
// attach_all(): a tracepoint and a raw tracepoint that count getpid() calls of the tgid in
// target_tgid (hits[0], hits[1]; the raw one compares the syscall number with target_nr), and an XDP program that needs an interface (skipped).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

volatile __u32 target_tgid;
volatile __u64 target_nr;
__u64 hits[2];

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_tp(void *ctx)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&hits[0], 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	/* args[1] is the syscall number */
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid &&
	    ctx->args[1] == target_nr)
		__sync_fetch_and_add(&hits[1], 1);
	return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
