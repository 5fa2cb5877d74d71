// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_cgroup.yaml): counts
// getppid() by cgroup id, only for cgroups in cgroup_filter, the map the exporter keeps
// filled from the config's cgroup_id_map regexps.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} cgroup_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} cgroup_getppid_total SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int by_cgroup(void *ctx)
{
	__u64 id = bpf_get_current_cgroup_id(), one = 1, *v;

	if (!bpf_map_lookup_elem(&cgroup_filter, &id))
		return 0;
	v = bpf_map_lookup_elem(&cgroup_getppid_total, &id);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&cgroup_getppid_total, &id, &one, BPF_NOEXIST);
	return 0;
}
