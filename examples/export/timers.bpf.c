// SPDX-License-Identifier: GPL-2.0
// Kernel timers started, by timer function: ebpf_exporter's "timers" example written for
// the timer/timer_start tracepoint (runs where tp_btf programs are refused). Served by
//   tinybpf export --config.dir=examples/export/build --config.names=timers
// with timers.yaml beside the compiled timers.bpf.o.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} timer_starts_total SEC(".maps");

SEC("tracepoint/timer/timer_start")
int timer_start(struct trace_event_raw_timer_start *ctx)
{
	__u64 function = (__u64)ctx->function;
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&timer_starts_total, &function);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&timer_starts_total, &function, &one, BPF_NOEXIST);
	return 0;
}
