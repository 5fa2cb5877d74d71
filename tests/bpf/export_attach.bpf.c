// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_attach.yaml): a uprobe on
// libc's getpid(), a perf_event/ section sampling the software CPU clock, and an XDP
// program for an interface that does not exist (it must fail to attach and be reported).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 kaddr_schedule = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} getpid_calls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_samples_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kaddr_seen_total SEC(".maps");

static __always_inline void bump(void *map)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(map, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("uprobe/libc.so.6:getpid")
int BPF_UPROBE(on_getpid)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 't' && comm[1] == 'b' && comm[2] == 'x') {
		bump(&getpid_calls_total);
		if (kaddr_schedule)
			bump(&kaddr_seen_total);
	}
	return 0;
}

SEC("perf_event/type=1,config=0,frequency=199")
int on_cpu_clock(void *ctx)
{
	bump(&cpu_samples_total);
	return 0;
}

SEC("xdp/tbexp-missing")
int xdp_nowhere(struct xdp_md *ctx)
{
	return XDP_PASS;
}
