// SPDX-License-Identifier: GPL-2.0
// uprobes attached by symbol (a gcc-built test binary and libc), uretprobes, attach
// cookies and uprobe_multi by pattern. Everything lands in hits[]:
//   0 uprobe hits          1 sum of the probed function's argument   2 last uprobe cookie
//   3 uretprobe hits       4 last return value                       5 last uretprobe cookie
//   6 libc getpid() hits of the tgid in target_pid[0]                 7 last libc cookie
//   8 uprobe_multi hits    9..11 uprobe_multi hits by cookie 1..3
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
	__uint(max_entries, 12);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void add(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&hits, &idx);

	if (c)
		__sync_fetch_and_add(c, n);
}

static __always_inline void set(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&hits, &idx);

	if (c)
		*c = n;
}

SEC("uprobe")
int BPF_UPROBE(on_call, int x)
{
	add(0, 1);
	add(1, x);
	set(2, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(on_return, int ret)
{
	add(3, 1);
	set(4, ret);
	set(5, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uprobe")
int on_libc_getpid(struct pt_regs *ctx)
{
	__u32 zero = 0;
	__u32 *pid = bpf_map_lookup_elem(&target_pid, &zero);

	if (!pid || *pid != (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	add(6, 1);
	set(7, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uprobe.multi")
int on_multi(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);

	add(8, 1);
	if (cookie >= 1 && cookie <= 3)
		add(8 + (__u32)cookie, 1);
	return 0;
}
