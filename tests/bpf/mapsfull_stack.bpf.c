// SPDX-License-Identifier: GPL-2.0
/*
 * Stack-trace fixture for tests/test_maps_full.py: on the getpid() calls of the thread
 * whose id the test stores in mf_tid[0], mf_stack_ids[0] = the user stack id (in
 * mf_stacks) and mf_stack_ids[1] = the kernel stack id (in mf_kstacks); negative: the
 * helper's error.  Two maps: in one, the two stacks could hash to the same bucket and
 * the second would overwrite the first (1 run in 128 with 128 buckets).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_STACK_DEPTH 127

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} mf_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} mf_kstacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __s64);
} mf_stack_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mf_tid SEC(".maps");

static __always_inline int is_target(void)
{
	__u32 zero = 0;
	__u32 *tid = bpf_map_lookup_elem(&mf_tid, &zero);

	return tid && *tid != 0 && *tid == (__u32)bpf_get_current_pid_tgid();
}

static __always_inline void store(__u32 slot, __s64 id)
{
	bpf_map_update_elem(&mf_stack_ids, &slot, &id, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int getpid_stacks(void *ctx)
{
	if (!is_target())
		return 0;
	/* REUSE_STACKID: a bucket holding an older stack is overwritten, not -EEXIST */
	store(0, bpf_get_stackid(ctx, &mf_stacks, BPF_F_USER_STACK | BPF_F_REUSE_STACKID));
	store(1, bpf_get_stackid(ctx, &mf_kstacks, BPF_F_REUSE_STACKID));
	return 0;
}
