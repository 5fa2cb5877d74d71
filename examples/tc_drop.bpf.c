// SPDX-License-Identifier: MIT
// tc_drop: a tcx ingress filter that drops IPv4 UDP datagrams to one port (configured
// before load) and lets everything else through. counters[]: 0 dropped, 1 other UDP
// datagrams passed, 2 other packets passed.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_HLEN 14

enum { DROPPED, UDP_PASSED, OTHER_PASSED, NR_COUNTERS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* configured from Python before load: the UDP port (host byte order) to drop */
const volatile __u16 drop_port = 0;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tcx/ingress")
int drop_udp_port(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	/* bpf_skb_load_bytes copies from the packet wherever its bytes are (linear or not) */
	if (skb->protocol != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 ||
	    ip.protocol != IPPROTO_UDP) {
		count(OTHER_PASSED);
		return TCX_NEXT; /* not ours to judge: the next program (or the stack) decides */
	}
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof(udp)) < 0) {
		count(OTHER_PASSED);
		return TCX_NEXT;
	}
	if (bpf_ntohs(udp.dest) == drop_port) {
		count(DROPPED);
		return TCX_DROP;
	}
	count(UDP_PASSED);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
