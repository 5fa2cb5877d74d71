// SPDX-License-Identifier: GPL-2.0
/*
 * Pinning fixture for tests/test_maps_full.py: mf_pinned is pinned by name under the
 * pin_root_path the test passes (never load it without one: the default root is
 * /sys/fs/bpf). mapsfull_pin_b.bpf.c declares the same map with another max_entries.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct pval {
	__u32 id;
	__s32 delta;
	__u64 total;
	char tag[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct pval);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mf_pinned SEC(".maps");

struct add_args {
	__u32 idx;
	__u32 pad;
	__u64 amount;
	__u64 total; /* out */
};

SEC("syscall")
int add_total(struct add_args *args)
{
	__u32 idx = args->idx;
	struct pval *v = bpf_map_lookup_elem(&mf_pinned, &idx);

	if (!v)
		return 1;
	v->total += args->amount;
	args->total = v->total;
	return 0;
}
