// SPDX-License-Identifier: MIT
// cgroup_egress: a cgroup_skb/egress filter. Every packet that a process of the cgroup
// sends passes through it; UDP datagrams (IPv4 or IPv6) to one port, configured before
// load, are refused: the sending system call fails with EPERM. counters[]: 0 blocked,
// 1 other UDP datagrams allowed, 2 other packets allowed.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

enum { BLOCKED, UDP_ALLOWED, OTHER_ALLOWED, NR_COUNTERS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* configured from Python before load: the UDP destination port (host byte order) to block */
const volatile __u16 blocked_port = 0;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("cgroup_skb/egress")
int filter_egress(struct __sk_buff *skb)
{
	struct udphdr udp;
	__u32 udp_off;

	/* cgroup skb programs see the packet from the network header on */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.protocol != IPPROTO_UDP)
			goto other;
		udp_off = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0 || ip6.nexthdr != IPPROTO_UDP)
			goto other;
		udp_off = sizeof(ip6);
	} else {
		goto other;
	}
	if (bpf_skb_load_bytes(skb, udp_off, &udp, sizeof(udp)) < 0)
		goto other;
	if (bpf_ntohs(udp.dest) == blocked_port) {
		count(BLOCKED);
		return 0; /* refuse */
	}
	count(UDP_ALLOWED);
	return 1;
other:
	count(OTHER_ALLOWED);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
