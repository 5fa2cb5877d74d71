// SPDX-License-Identifier: GPL-2.0
// LSM program: refuses file_open of the inode number in denied_ino for the tgid in
// target_pid, and counts the refusals.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
const volatile __u64 denied_ino = 0;
__u64 refused = 0;

SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	if (file->f_inode->i_ino != denied_ino)
		return 0;
	__sync_fetch_and_add(&refused, 1);
	return -1; /* -EPERM */
}
