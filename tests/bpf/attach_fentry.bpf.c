// SPDX-License-Identifier: GPL-2.0
// fentry/fexit on one kernel function (the test sets the target with set_attach_target:
// a function that is in this kernel's BTF, the getpgid() syscall wrapper), counting calls
// of the tgid in target_pid (hits[0] entry, hits[1] exit); fmod_ret on security_file_open
// (fmod_ret needs an error-injectable or security_ function: Debian kernels have no
// CONFIG_FUNCTION_ERROR_INJECTION) refusing that process's opens of inode denied_ino.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
const volatile __u64 denied_ino = 0;
__u64 hits[2] = {};

static __always_inline int is_target(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("fentry")
int BPF_PROG(on_entry)
{
	if (is_target())
		__sync_fetch_and_add(&hits[0], 1);
	return 0;
}

SEC("fexit")
int BPF_PROG(on_exit)
{
	if (is_target())
		__sync_fetch_and_add(&hits[1], 1);
	return 0;
}

SEC("fmod_ret/security_file_open")
int BPF_PROG(deny_open, struct file *file, int ret)
{
	if (!is_target() || file->f_inode->i_ino != denied_ino)
		return ret;
	return -1; /* -EPERM: the open fails, security_file_open's body is skipped */
}
