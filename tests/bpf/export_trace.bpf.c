// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_trace.yaml): tracing.spans
// in ebpf_exporter's way. Every getppid() of a tbx* process submits one span record to a
// ring buffer: ids, a CLOCK_MONOTONIC start, a duration, then the comm as an attribute.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} getppid_spans SEC(".maps");

struct span {
	__u8 trace_id[16];
	__u64 parent_span_id;
	__u64 span_id;
	__u64 span_monotonic_timestamp_ns;
	__u64 span_duration_ns;
	char comm[16];
	__u8 kind;
	__u8 pad[7];
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int span_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct span *s;
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 't' || comm[1] != 'b' || comm[2] != 'x')
		return 0;
	s = bpf_ringbuf_reserve(&getppid_spans, sizeof(*s), 0);
	if (!s)
		return 0;
	__builtin_memset(s, 0, sizeof(*s));
	s->trace_id[0] = 0xab;
	s->trace_id[15] = 0x01;
	/* hex decodes bytes in memory order: big-endian ids read naturally */
	s->parent_span_id = bpf_cpu_to_be64(0x1111);
	s->span_id = bpf_cpu_to_be64(0x22220000ULL | (tgid & 0xffff));
	s->span_monotonic_timestamp_ns = bpf_ktime_get_ns();
	s->span_duration_ns = 1234567;
	__builtin_memcpy(s->comm, comm, sizeof(comm));
	s->kind = 1;
	bpf_ringbuf_submit(s, 0);
	return 0;
}
