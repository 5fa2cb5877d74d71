// SPDX-License-Identifier: GPL-2.0
// Map and program types newer than the first generation's closed enums: an ARENA map
// (BPF_MAP_TYPE_ARENA = 33) and a NETFILTER program (BPF_PROG_TYPE_NETFILTER = 32).
// The first generation aborted with a double free when loading such an object (W1).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
} arena SEC(".maps");

SEC("netfilter")
int nf_accept(struct bpf_nf_ctx *ctx)
{
	return 1; /* NF_ACCEPT */
}
