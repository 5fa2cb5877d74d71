// SPDX-License-Identifier: GPL-2.0
/*
 * Reliability fixture (tests/test_reliability_fuzz.py): one CO-RE field read through a
 * local, typedef'd type, so a test can corrupt that typedef (make it refer to itself) and
 * check what load() does with a BTF type cycle during CO-RE relocation.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

typedef int rel_pid_t;

struct task_struct___rel {
	rel_pid_t tgid;
} __attribute__((preserve_access_index));

__u64 last_tgid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int core_read(void *ctx)
{
	struct task_struct___rel *t = (void *)bpf_get_current_task();

	last_tgid = BPF_CORE_READ(t, tgid);
	return 0;
}
