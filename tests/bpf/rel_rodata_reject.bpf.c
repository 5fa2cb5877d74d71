// SPDX-License-Identifier: GPL-2.0
// A const volatile global (in .rodata, which libbpf maps read-only once the map is
// created) and a program the verifier rejects: load() fails after .rodata was frozen.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 limit = 1;
__u64 hits = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} values SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int out_of_bounds(void *ctx)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&values, &zero);

	if (!v)
		return 0;
	hits += limit;
	return *(volatile __u32 *)(v + 100);
}
