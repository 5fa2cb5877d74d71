// SPDX-License-Identifier: MIT
// profile: a sampling CPU profiler. Attached to a CPU-clock perf event on every CPU, the
// program runs at each sample and counts (process, kernel stack, user stack); the stacks
// themselves go to a STACK_TRACE map, which hands out one id per distinct stack.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_DEPTH 64

struct sample_key {
	__u32 pid;
	__s32 kernel_stack_id;	/* negative: no kernel stack (a user-mode sample) */
	__s32 user_stack_id;	/* negative: no user stack (a kernel thread) */
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sample_key);
	__type(value, __u64);
} counts SEC(".maps");

/* configured from Python before load: 0 means every process (idle is always left out) */
const volatile __u32 target_pid = 0;

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct sample_key key = {};
	__u64 zero = 0, *c;

	if (pid == 0 || (target_pid && pid != target_pid))
		return 0;
	key.pid = pid;
	key.kernel_stack_id = bpf_get_stackid(ctx, &stacks, 0);
	key.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	c = bpf_map_lookup_elem(&counts, &key);
	if (!c) { /* a new stack (or another CPU is adding it right now) */
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &key);
		if (!c)
			return 0;
	}
	__sync_fetch_and_add(c, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
