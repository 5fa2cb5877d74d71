// SPDX-License-Identifier: GPL-2.0
/*
 * A small object for the open+load+close benchmark, shaped like the test suite's
 * minimal fixture: one tracepoint program, two array maps, a .rodata constant and a
 * .bss variable (so libbpf also creates and mmaps the internal maps).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 magic = 42;
__u64 bss_hits = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counter SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int handle_getpid(void *ctx)
{
	__u32 zero = 0;
	__u32 *want = bpf_map_lookup_elem(&config_map, &zero);
	__u64 *cnt;

	if (!want || *want != (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	cnt = bpf_map_lookup_elem(&counter, &zero);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	bss_hits += magic;
	return 0;
}
