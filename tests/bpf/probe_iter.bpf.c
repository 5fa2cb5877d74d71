// SPDX-License-Identifier: GPL-2.0
// Feature probe (tests/helpers/kernel.py): the smallest iterator of each target the tests use. Some kernel builds
// refuse BPF_PROG_TYPE_TRACING programs (iterators included) with EPERM; the iterator
// tests ask this probe first and skip with its answer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int probe_task(struct bpf_iter__task *ctx)
{
	return 0;
}

SEC("iter/bpf_map_elem")
int probe_bpf_map_elem(struct bpf_iter__bpf_map_elem *ctx)
{
	return 0;
}
