// SPDX-License-Identifier: GPL-2.0
/*
 * Fixture for tests/test_firstgen.py: the event structs of the first generation's GUIDE
 * (event struct design, BTF anchoring, multiple event types, separate buffers).
 *
 * emit (getppid), for the process whose tgid the test wrote into target[0], sends an
 * exec_event then an exit_event through 'events' (told apart by event_type at offset 8),
 * and one of each through 'exec_events' and 'exit_events'.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define EVENT_EXEC 1
#define EVENT_EXIT 2

struct event {
	__u32 pid;
	__u32 tid;
	char comm[16];
};

struct exec_event {
	__u64 timestamp;
	__u8 event_type;
	__u8 _pad[3];
	__u32 pid;
	char comm[16];
};

struct exit_event {
	__u64 timestamp;
	__u8 event_type;
	__u8 _pad[3];
	__u32 pid;
	__s32 exit_code;
};

struct event _event_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exec_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exit_events SEC(".maps");

static __always_inline void send_exec(void *rb, __u32 tgid)
{
	struct exec_event *e = bpf_ringbuf_reserve(rb, sizeof(*e), 0);

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp = bpf_ktime_get_ns();
	e->event_type = EVENT_EXEC;
	e->pid = tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void send_exit(void *rb, __u32 tgid)
{
	struct exit_event *e = bpf_ringbuf_reserve(rb, sizeof(*e), 0);

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp = bpf_ktime_get_ns();
	e->event_type = EVENT_EXIT;
	e->pid = tgid;
	e->exit_code = -7;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp/syscalls/sys_enter_getppid")
int emit(void *ctx)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *want = bpf_map_lookup_elem(&target, &zero);

	if (!want || *want != tgid)
		return 0;
	send_exec(&events, tgid);
	send_exit(&events, tgid);
	send_exec(&exec_events, tgid);
	send_exit(&exit_events, tgid);
	return 0;
}
