// SPDX-License-Identifier: GPL-2.0
// fentry/fexit on the getppid() syscall of the tgid in target_pid (hits[0] entry,
// hits[1] exit).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
__u64 hits[2] = {};

SEC("fentry/__x64_sys_getppid")
int BPF_PROG(on_entry)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&hits[0], 1);
	return 0;
}

SEC("fexit/__x64_sys_getppid")
int BPF_PROG(on_exit)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&hits[1], 1);
	return 0;
}
