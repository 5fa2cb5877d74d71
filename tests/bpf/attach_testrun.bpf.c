// SPDX-License-Identifier: GPL-2.0
// Programs run with BPF_PROG_TEST_RUN only:
//   xdp_swap  (XDP)     swaps the Ethernet addresses; XDP_DROP when the first payload byte
//                       is 'D', XDP_PASS otherwise, XDP_ABORTED on a runt frame
//   tc_swap   (tc)      the same for SCHED_CLS: TC_ACT_SHOT / TC_ACT_OK
//   sock_len  (socket)  0 (drop) when the byte at offset 8 is 'D', else the packet length
//   sys_add   (syscall) ctx->sum = ctx->a + ctx->b, returns ctx->a * 2
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static __always_inline int swap_macs(void *data, void *end)
{
	struct ethhdr *eth = data;
	unsigned char tmp[6];
	__u8 *payload = (void *)(eth + 1);

	if ((void *)(payload + 1) > end)
		return -1;
	__builtin_memcpy(tmp, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, tmp, 6);
	return *payload == 'D';
}

SEC("xdp")
int xdp_swap(struct xdp_md *ctx)
{
	int r = swap_macs((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	if (r < 0)
		return XDP_ABORTED;
	return r ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_swap(struct __sk_buff *skb)
{
	int r = swap_macs((void *)(long)skb->data, (void *)(long)skb->data_end);

	if (r < 0)
		return TC_ACT_SHOT;
	return r ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("socket")
int sock_len(struct __sk_buff *skb)
{
	__u8 b = 0;

	if (bpf_skb_load_bytes(skb, 8, &b, 1) == 0 && b == 'D')
		return 0;
	return skb->len;
}

struct add_args {
	int a;
	int b;
	long long sum;
};

SEC("syscall")
int sys_add(struct add_args *ctx)
{
	ctx->sum = (long long)ctx->a + ctx->b;
	return ctx->a * 2;
}
