// SPDX-License-Identifier: GPL-2.0
// cgroup/sock_create programs: one counts socket creations in the cgroup and allows them,
// the other refuses them (socket() fails with EPERM).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

SEC("cgroup/sock_create")
int count_sock(struct bpf_sock *sk)
{
	__u32 zero = 0;
	__u64 *cnt = bpf_map_lookup_elem(&sockets, &zero);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return 1;
}

SEC("cgroup/sock_create")
int deny_sock(struct bpf_sock *sk)
{
	return 0;
}
