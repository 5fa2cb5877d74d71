// SPDX-License-Identifier: GPL-2.0
// cgroup/sock_create programs, each counting into its own slot of counts[] and allowing
// the socket: count_a -> 0, count_b -> 1, count_c -> 2 (the tests attach count_c as
// sock_release too, by changing its expected attach type before load).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("cgroup/sock_create")
int count_a(struct bpf_sock *sk)
{
	add(0);
	return 1;
}

SEC("cgroup/sock_create")
int count_b(struct bpf_sock *sk)
{
	add(1);
	return 1;
}

SEC("cgroup/sock_create")
int count_c(struct bpf_sock *sk)
{
	add(2);
	return 1;
}
