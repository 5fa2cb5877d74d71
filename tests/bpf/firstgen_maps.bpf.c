// SPDX-License-Identifier: GPL-2.0
/*
 * Fixture for tests/test_firstgen.py: the maps the first generation's README and GUIDE
 * examples use, with the layouts those examples declare in Python.
 *
 * record (getpid) runs only for the process whose tgid the test wrote into
 * config[0].target_pid with config[0].enabled set (the GUIDE's config map pattern):
 * it stores {pid, comm} in events[tgid] and counts the call in counters[42].
 * trace_exec (kprobe/do_execve) does the same for execve, where kprobes exist.
 */
/* vmlinux.h of some kernels has 'typedef struct config_s config;', which a map named
 * 'config' would collide with (the first generation's W31): rename the typedef here. */
#define config tinybpf_vmlinux_config
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	__u32 pid;
	char comm[16];
};

struct config_value {
	__u32 target_pid;
	__u8 enabled;
};

struct port_counts {
	__u64 connections;
	__u64 bytes_sent;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config_value);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct port_counts);
} port_stats SEC(".maps");

static __always_inline int record_call(void)
{
	__u32 zero = 0, key = 42, tgid = bpf_get_current_pid_tgid() >> 32;
	struct config_value *c = bpf_map_lookup_elem(&config, &zero);
	struct event e = {};
	__u64 one = 1, *n;

	if (!c || !c->enabled || c->target_pid != tgid)
		return 0;
	e.pid = tgid;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_map_update_elem(&events, &tgid, &e, BPF_ANY);
	n = bpf_map_lookup_elem(&counters, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counters, &key, &one, BPF_NOEXIST);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int record(void *ctx)
{
	return record_call();
}

SEC("kprobe/do_execve")
int trace_exec(void *ctx)
{
	return record_call();
}
