// SPDX-License-Identifier: MIT
// opensnoop: one event per openat(2), in the style of libbpf-tools/opensnoop.
//
// Configured from Python before load (.rodata):
//   target_pid   only this process (tgid); 0 traces every process
//   target_uid   only this user; (u32)-1 traces every user
//   failed_only  only calls that failed
// The start map (thread id -> arguments, between entry and exit) and the events ring
// buffer are resized from Python before load. Events are struct event, which holds a
// nested struct and two char arrays; Python decodes it from BTF, field names included.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define FNAME_LEN 256

struct args_t {
	const char *fname;
	int flags;
	__u32 mode;
};

struct task_ids {
	__u32 pid;
	__u32 tid;
	__u32 uid;
};

struct event {
	struct task_ids task;
	__u64 ts_ns;
	__s32 ret;
	__s32 flags;
	__u32 mode;
	char comm[TASK_COMM_LEN];
	char fname[FNAME_LEN];
};

const volatile __u32 target_pid = 0;
const volatile __u32 target_uid = (__u32)-1;
const volatile bool failed_only = false;

/* live counters, read from Python through the memory-mapped .bss */
__u64 events_sent = 0;
__u64 events_dropped = 0;

/* keeps struct event in the object's BTF (ring buffer maps carry no value type) */
const struct event *const event_anchor __attribute__((used)) = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct args_t);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct args_t args = {};

	if (target_pid && target_pid != pid)
		return 0;
	if (target_uid != (__u32)-1 && target_uid != uid)
		return 0;
	args.fname = (const char *)ctx->args[1];
	args.flags = (int)ctx->args[2];
	args.mode = (__u32)ctx->args[3];
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int trace_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct args_t *ap;
	struct event *e;
	int ret;

	ap = bpf_map_lookup_elem(&start, &tid);
	if (!ap)
		return 0;
	ret = (int)ctx->ret;
	if (failed_only && ret >= 0)
		goto cleanup;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_dropped, 1);
		goto cleanup;
	}
	e->task.pid = id >> 32;
	e->task.tid = tid;
	e->task.uid = (__u32)bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_ns();
	e->ret = ret;
	e->flags = ap->flags;
	e->mode = ap->mode;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->fname, sizeof(e->fname), ap->fname);
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&events_sent, 1);
cleanup:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
