// SPDX-License-Identifier: MIT
// usdt: one event per hit of the USDT probe tinybpf_app:request(id, latency_us, path) of
// examples/usdt_app.c. BPF_USDT decodes the arguments from the probe's note, whatever
// registers or stack slots the C compiler put them in.
//
// <bpf/usdt.bpf.h> includes <linux/errno.h>, which needs the multiarch include directory
// for <asm/errno.h>; compile with it added:
//   python -m tinybpf compile examples/usdt.bpf.c -o examples/build/ \
//       --cflags=-I/usr/include/$(gcc -print-multiarch)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct event {
	__u32 pid;
	__s32 id;
	__s64 latency_us;
	char path[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* keeps struct event in BTF for event_type="event" (the ring buffer has no value type) */
const struct event *const event_btf_anchor __attribute__((used)) = 0;

SEC("usdt")
int BPF_USDT(on_request, int id, long latency_us, const char *path)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->id = id;
	e->latency_us = latency_us;
	bpf_probe_read_user_str(e->path, sizeof(e->path), path);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
