// SPDX-License-Identifier: GPL-2.0
// kprobe, ksyscall and kprobe_multi programs counting getppid() of the tgid in
// target_pid[0] (hits[0], [1], [2]).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void count_if_target(__u32 idx)
{
	__u32 zero = 0;
	__u32 *pid = bpf_map_lookup_elem(&target_pid, &zero);
	__u64 *c;

	if (!pid || *pid != (__u32)(bpf_get_current_pid_tgid() >> 32))
		return;
	c = bpf_map_lookup_elem(&hits, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("kprobe")
int on_kprobe(struct pt_regs *ctx)
{
	count_if_target(0);
	return 0;
}

SEC("ksyscall/getppid")
int BPF_KSYSCALL(on_ksyscall)
{
	count_if_target(1);
	return 0;
}

SEC("kprobe.multi")
int on_kprobe_multi(struct pt_regs *ctx)
{
	count_if_target(2);
	return 0;
}
