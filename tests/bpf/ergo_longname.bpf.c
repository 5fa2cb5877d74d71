// SPDX-License-Identifier: GPL-2.0
// 'tinybpf ps': a program whose name is longer than the kernel's 15 characters, a map.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ps_calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid_calls_with_a_long_name(void *ctx)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&ps_calls, &zero);

	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}
