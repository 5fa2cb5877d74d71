// SPDX-License-Identifier: GPL-2.0
// netkit primary: counts packets, lets them pass.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 packets = 0;

SEC("netkit/primary")
int nk_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&packets, 1);
	return TCX_NEXT;
}
