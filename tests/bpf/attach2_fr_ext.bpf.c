// SPDX-License-Identifier: GPL-2.0
// freplace of verdict() in attach2_fr_target: every packet is dropped.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("freplace/verdict")
int fr_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
