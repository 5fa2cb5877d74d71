// SPDX-License-Identifier: GPL-2.0
// Socket filter: drops datagrams whose first payload byte is 'D' (the data of a UDP
// socket's filter starts at the UDP header, so the payload is at offset 8) and counts
// them in counts[0]; keeps everything else whole (counts[1]).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("socket")
int drop_marked(struct __sk_buff *skb)
{
	__u8 first = 0;

	if (bpf_skb_load_bytes(skb, 8, &first, 1) == 0 && first == 'D') {
		add(0);
		return 0;
	}
	add(1);
	return skb->len;
}
