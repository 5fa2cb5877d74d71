// SPDX-License-Identifier: GPL-2.0
// attach_all() with a real failure: a tracepoint that exists, then one that does not.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_getpid")
int good_tp(void *ctx)
{
	return 0;
}

SEC("tracepoint/tinybpf_no_such_category/no_such_event")
int bad_tp(void *ctx)
{
	return 0;
}
