// SPDX-License-Identifier: GPL-2.0
/*
 * pin_root_path fixture for tests/test_phases.py: one map pinned by name, so two objects
 * opened with the same pin_root_path share it. (Never load it without pin_root_path: the
 * default root is /sys/fs/bpf.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_counts SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int touch(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&shared_counts, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
