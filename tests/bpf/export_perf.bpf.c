// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_perf.yaml): a
// perf_event_array counter in ebpf_exporter's way: every getppid() of a tbx* process sends
// its comm and a kind as one perf event (and one ring buffer record); the exporter counts
// events by their bytes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} getppid_events_total SEC(".maps");

/* the same events through a ring buffer, which ebpf_exporter also counts this way */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} getppid_ring_total SEC(".maps");

struct event {
	char comm[16];
	__u32 kind;
	__u32 pad;
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int send_getppid(void *ctx)
{
	struct event ev = {.kind = 1};

	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (ev.comm[0] != 't' || ev.comm[1] != 'b' || ev.comm[2] != 'x')
		return 0;
	bpf_perf_event_output(ctx, &getppid_events_total, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
	bpf_ringbuf_output(&getppid_ring_total, &ev, sizeof(ev), 0);
	return 0;
}
