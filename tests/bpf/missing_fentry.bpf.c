// SPDX-License-Identifier: GPL-2.0
// An fentry program whose target function no kernel has: load() must name it.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/tinybpf_no_such_function")
int BPF_PROG(on_missing)
{
	return 0;
}
