// SPDX-License-Identifier: GPL-2.0
// trace_pipe(): bpf_printk() of a marker when the tgid in target_tgid calls getppid().
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

volatile __u32 target_tgid;
volatile __u64 cookie;

SEC("tracepoint/syscalls/sys_enter_getppid")
int say_marker(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == target_tgid)
		bpf_printk("tinybpf-marker tgid=%u cookie=%llu", tgid, cookie);
	return 0;
}
