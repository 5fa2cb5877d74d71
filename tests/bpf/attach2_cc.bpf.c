// SPDX-License-Identifier: GPL-2.0
// A minimal TCP congestion control, "tinybpf_cc", as a struct_ops map: Reno-like halving
// on loss, +1 segment per ACK below ssthresh. Registered by attach_struct_ops().
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 calls = 0;

SEC("struct_ops")
__u32 BPF_PROG(tinybpf_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 half = tp->snd_cwnd >> 1;

	__sync_fetch_and_add(&calls, 1);
	return half > 2 ? half : 2;
}

SEC("struct_ops")
__u32 BPF_PROG(tinybpf_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	__sync_fetch_and_add(&calls, 1);
	return tp->snd_cwnd;
}

SEC("struct_ops")
void BPF_PROG(tinybpf_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&calls, 1);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops tinybpf_cc = {
	.ssthresh = (void *)tinybpf_ssthresh,
	.undo_cwnd = (void *)tinybpf_undo_cwnd,
	.cong_avoid = (void *)tinybpf_cong_avoid,
	.name = "tinybpf_cc",
};
