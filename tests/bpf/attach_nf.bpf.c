// SPDX-License-Identifier: GPL-2.0
// Netfilter programs on IPv4 UDP datagrams to the port in udp_port[0] (host order):
// nf_count counts them into counts[0] and accepts; nf_drop counts them into counts[1] and
// drops them (NF_DROP). Everything else is accepted.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define NF_DROP 0
#define NF_ACCEPT 1

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

static __always_inline int is_our_udp(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	struct iphdr ip;
	struct udphdr udp;
	__u32 zero = 0;
	__u32 *port;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
		return 0;
	if (ip.version != 4 || ip.protocol != IPPROTO_UDP)
		return 0;
	if (bpf_probe_read_kernel(&udp, sizeof(udp), head + nh + ip.ihl * 4))
		return 0;
	port = bpf_map_lookup_elem(&udp_port, &zero);
	return port && udp.dest == bpf_htons((__u16)*port);
}

static __always_inline void add(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("netfilter")
int nf_count(struct bpf_nf_ctx *ctx)
{
	if (is_our_udp(ctx))
		add(0);
	return NF_ACCEPT;
}

SEC("netfilter")
int nf_drop(struct bpf_nf_ctx *ctx)
{
	if (!is_our_udp(ctx))
		return NF_ACCEPT;
	add(1);
	return NF_DROP;
}
