// SPDX-License-Identifier: GPL-2.0
// A program calling a kfunc no kernel has: load() must name it.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern int tinybpf_no_such_kfunc(int x) __ksym;

SEC("syscall")
int call_missing(void *ctx)
{
	return tinybpf_no_such_kfunc(1);
}
