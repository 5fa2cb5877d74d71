// SPDX-License-Identifier: GPL-2.0
// XDP counters of IPv4 UDP datagrams to the port in udp_port[0]: xdp_count_a counts into
// counts[0], xdp_count_b into counts[1]; both pass every packet.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} udp_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int is_our_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u32 zero = 0;
	__u32 *port;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return 0;
	port = bpf_map_lookup_elem(&udp_port, &zero);
	return port && udp->dest == bpf_htons((__u16)*port);
}

static __always_inline void add(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("xdp")
int xdp_count_a(struct xdp_md *ctx)
{
	if (is_our_udp(ctx))
		add(0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_count_b(struct xdp_md *ctx)
{
	if (is_our_udp(ctx))
		add(1);
	return XDP_PASS;
}
