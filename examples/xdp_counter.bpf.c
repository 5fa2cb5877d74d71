// SPDX-License-Identifier: MIT
// xdp_counter: counts the packets and bytes an interface receives, per protocol (the
// EtherType, and the IP protocol of IPv4/IPv6 packets), at the XDP hook: before the kernel
// allocates anything for the packet. Every packet is passed on unchanged.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct proto_key {
	__u16 eth_proto;	/* host byte order */
	__u8 ip_proto;		/* 0 for non-IP packets */
	__u8 pad;
};

struct proto_count {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct proto_key);
	__type(value, struct proto_count);
} counts SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct proto_key key = {};
	struct proto_count zero = {}, *c;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	key.eth_proto = bpf_ntohs(eth->h_proto);
	if (key.eth_proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= data_end)
			key.ip_proto = ip->protocol;
	} else if (key.eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) <= data_end)
			key.ip_proto = ip6->nexthdr;
	}
	c = bpf_map_lookup_elem(&counts, &key);
	if (!c) { /* first packet of this protocol (or another CPU is adding it right now) */
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &key);
		if (!c)
			return XDP_PASS;
	}
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, data_end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
