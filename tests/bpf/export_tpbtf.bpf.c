// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_tpbtf.yaml): a tp_btf
// program (BPF_PROG_TYPE_TRACING) counting getppid() of tbx* processes through the
// sys_enter raw tracepoint's BTF. Kernels that refuse TRACING programs skip its test.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, __u64);
	__type(value, __u64);
} btf_syscalls_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	char comm[16];
	__u64 key = id, one = 1, *v;

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 't' || comm[1] != 'b' || comm[2] != 'x')
		return 0;
	v = bpf_map_lookup_elem(&btf_syscalls_total, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&btf_syscalls_total, &key, &one, BPF_NOEXIST);
	return 0;
}
