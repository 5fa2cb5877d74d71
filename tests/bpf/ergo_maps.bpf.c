// SPDX-License-Identifier: GPL-2.0
// len()/clear()/zero()/lookup_percpu_sum(): on each getpid() of the tgid in target_tgid,
// the program adds to a per-CPU struct (stats[0]), inserts a new key into the hash 'seen'
// and counts in the array 'counts' (index calls % 4).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct stats {
	__u64 calls;
	__u64 bytes;
	__u32 small;
	__s32 delta;
	__u8 tag[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} queue SEC(".maps");

volatile __u32 target_tgid;
__u64 calls;

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 zero = 0, idx;
	__u64 n, one = 1;
	struct stats *s;
	__u64 *c;

	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	n = __sync_fetch_and_add(&calls, 1);
	s = bpf_map_lookup_elem(&stats, &zero);
	if (s) {
		s->calls += 1;
		s->bytes += 10;
		s->small += 1;
		s->delta -= 1;
	}
	bpf_map_update_elem(&seen, &n, &one, BPF_ANY);
	idx = n & 3;
	c = bpf_map_lookup_elem(&counts, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}
