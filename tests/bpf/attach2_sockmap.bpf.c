// SPDX-License-Identifier: GPL-2.0
// sockmap stream verdict: counts the messages and bytes it sees and passes them all on.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sock_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} skb_counts SEC(".maps");

SEC("sk_skb/stream_verdict")
int sk_verdict(struct __sk_buff *skb)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *n = bpf_map_lookup_elem(&skb_counts, &k0);
	__u64 *bytes = bpf_map_lookup_elem(&skb_counts, &k1);

	if (n)
		__sync_fetch_and_add(n, 1);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return SK_PASS;
}
