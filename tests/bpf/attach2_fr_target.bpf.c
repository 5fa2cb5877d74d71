// SPDX-License-Identifier: GPL-2.0
// freplace target: an XDP program whose verdict comes from a global (replaceable) function.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__noinline int verdict(struct xdp_md *ctx)
{
	if (!ctx)
		return XDP_ABORTED;
	return XDP_PASS;
}

SEC("xdp")
int fr_target(struct xdp_md *ctx)
{
	return verdict(ctx);
}
