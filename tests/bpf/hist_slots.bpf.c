// SPDX-License-Identifier: GPL-2.0
// A libbpf-tools style histogram: struct hist { __u32 slots[26]; } as the value of an
// array map. Each getpid() of target_pid counts once in slots[slot].
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_SLOTS 26

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

__u32 target_pid = 0;
__u32 slot = 0;

SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 zero = 0, s = slot;
	struct hist *h;

	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	h = bpf_map_lookup_elem(&hists, &zero);
	if (!h)
		return 0;
	if (s >= MAX_SLOTS)
		s = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[s], 1);
	return 0;
}
