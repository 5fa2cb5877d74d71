// SPDX-License-Identifier: GPL-2.0
// perf_event program: counts CPU-clock samples per CPU (samples[0], a per-CPU array) and
// the samples that interrupted the tgid in target_pid[0] (samples[1]).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} samples SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0, one = 1;
	__u32 *pid = bpf_map_lookup_elem(&target_pid, &zero);
	__u64 *c = bpf_map_lookup_elem(&samples, &zero);

	if (c)
		*c += 1;
	if (pid && *pid == (__u32)(bpf_get_current_pid_tgid() >> 32)) {
		c = bpf_map_lookup_elem(&samples, &one);
		if (c)
			*c += 1;
	}
	return 0;
}
