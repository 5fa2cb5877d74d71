// SPDX-License-Identifier: GPL-2.0
// Tracing programs with observable effects, filtered by the tgid in config_map[CFG_PID].
// counters[]:
//   0 tracepoint syscalls/sys_enter_getpid (auto-attach from the section)
//   1 tracepoint syscalls/sys_enter_getppid (attached with attach_tracepoint)
//   2 raw tracepoint sys_enter, only syscall number config_map[CFG_NR]
//   3 uprobe hits, 4 sum of the probed function's argument
//   5 uretprobe hits, 6 last return value
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define CFG_PID 0
#define CFG_NR 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int cfg(__u32 idx, __u32 *out)
{
	__u32 *v = bpf_map_lookup_elem(&config_map, &idx);

	if (!v)
		return -1;
	*out = *v;
	return 0;
}

static __always_inline int is_target(void)
{
	__u32 pid;

	if (cfg(CFG_PID, &pid))
		return 0;
	return pid == (__u32)(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline void add(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		__sync_fetch_and_add(c, n);
}

static __always_inline void set(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c = n;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	if (is_target())
		add(0, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx)
{
	if (is_target())
		add(1, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 nr;

	if (!is_target() || cfg(CFG_NR, &nr))
		return 0;
	if (ctx->args[1] == nr)
		add(2, 1);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(uprobe_target, int x)
{
	add(3, 1);
	add(4, x);
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(uretprobe_target, int ret)
{
	add(5, 1);
	set(6, ret);
	return 0;
}

SEC("kprobe")
int kprobe_any(void *ctx)
{
	if (is_target())
		add(7, 1);
	return 0;
}
