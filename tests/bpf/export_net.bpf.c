// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_net.yaml): an XDP program
// in ebpf_exporter's SEC("xdp/<ifname>") form on the veth 'tbexp0' of a namespace the test
// makes, counting IPv4 packets by interface, protocol and source address.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800

struct pkt_key {
	__u32 ifindex;
	__u32 proto;
	__u32 saddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct pkt_key);
	__type(value, __u64);
} xdp_packets_total SEC(".maps");

SEC("xdp/tbexp0")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct pkt_key key = {};
	__u64 one = 1, *v;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	key.ifindex = ctx->ingress_ifindex;
	key.proto = ip->protocol;
	key.saddr = ip->saddr;
	v = bpf_map_lookup_elem(&xdp_packets_total, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&xdp_packets_total, &key, &one, BPF_NOEXIST);
	return XDP_PASS;
}
