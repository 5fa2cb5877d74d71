// SPDX-License-Identifier: GPL-2.0
// TC programs (legacy clsact "tc" and tcx) on IPv4 UDP datagrams to the port in
// udp_port[0] (host order). counts[]: 0 tc_count, 1 tc_drop, 2 tcx_count, 3 tcx_drop.
// tcx_first/tcx_second append their number to order[0] (order = order * 10 + n), so one
// datagram through both leaves 12 or 21 depending on which ran first.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} udp_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} order SEC(".maps");

static __always_inline int is_our_udp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
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

static __always_inline void append(__u64 n)
{
	__u32 zero = 0;
	__u64 *o = bpf_map_lookup_elem(&order, &zero);

	if (o)
		*o = *o * 10 + n;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	if (is_our_udp(skb))
		add(0);
	return TC_ACT_OK;
}

SEC("tc")
int tc_drop(struct __sk_buff *skb)
{
	if (!is_our_udp(skb))
		return TC_ACT_OK;
	add(1);
	return TC_ACT_SHOT;
}

SEC("tcx/ingress")
int tcx_count(struct __sk_buff *skb)
{
	if (is_our_udp(skb))
		add(2);
	return TCX_NEXT;
}

SEC("tcx/ingress")
int tcx_drop(struct __sk_buff *skb)
{
	if (!is_our_udp(skb))
		return TCX_NEXT;
	add(3);
	return TCX_DROP;
}

SEC("tcx/ingress")
int tcx_first(struct __sk_buff *skb)
{
	if (is_our_udp(skb))
		append(1);
	return TCX_NEXT;
}

SEC("tcx/ingress")
int tcx_second(struct __sk_buff *skb)
{
	if (is_our_udp(skb))
		append(2);
	return TCX_NEXT;
}
