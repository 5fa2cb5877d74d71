// SPDX-License-Identifier: MIT
// uprobe_libc: every getenv() call of a process, with its argument and its result. The
// uprobe saves the name per thread; the uretprobe pairs it with the returned value and
// sends one event.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NAME_LEN 64
#define VALUE_LEN 96

struct event {
	__u32 pid;
	__u32 tid;
	__u8 found;		/* getenv() returned non-NULL */
	char comm[16];
	char name[NAME_LEN];
	char value[VALUE_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);	/* thread id */
	__type(value, const char *);
} names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* keeps struct event in BTF for event_type="event" (the ring buffer has no value type) */
const struct event *const event_btf_anchor __attribute__((used)) = 0;

/* configured from Python before load: 0 means every process */
const volatile __u32 target_pid = 0;

SEC("uprobe")
int BPF_UPROBE(getenv_entry, const char *name)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;

	if (target_pid && (pid_tgid >> 32) != target_pid)
		return 0;
	bpf_map_update_elem(&names, &tid, &name, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(getenv_return, const char *value)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	const char **name;
	struct event *e;

	name = bpf_map_lookup_elem(&names, &tid);
	if (!name)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = pid_tgid >> 32;
		e->tid = tid;
		e->found = value != 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_probe_read_user_str(e->name, sizeof(e->name), *name);
		e->value[0] = 0;
		if (value)
			bpf_probe_read_user_str(e->value, sizeof(e->value), value);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&names, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
