// SPDX-License-Identifier: MIT
// syscount: system calls per syscall id (count and total time) and a log2 histogram of
// their latency in nanoseconds, for one process or for all.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 32

struct syscall_start {
	__u64 ts;
	__u32 id;
};

struct syscall_stat {
	__u64 count;
	__u64 total_ns;
};

/* per-thread start of the syscall in progress; LRU: threads that exit inside a syscall
 * (exit_group) never clear their entry */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct syscall_start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct syscall_stat);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

/* configured from Python before load: 0 means every process */
const volatile __u32 target_pid = 0;

/* floor(log2(v)), 0 for v == 0 (libbpf-tools' log2l: BPF has no count-leading-zeros
 * instruction, and clang 14 crashes on __builtin_clzll for the bpf target) */
static __always_inline __u64 log2l(__u64 v)
{
	__u64 r = 0, shift;

	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	return r | (v >> 1);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_start s;

	if (target_pid && (pid_tgid >> 32) != target_pid)
		return 0;
	s.ts = bpf_ktime_get_ns();
	s.id = (__u32)id;
	bpf_map_update_elem(&starts, &tid, &s, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syscall_stat zero = {}, *st;
	struct syscall_start *s;
	__u64 delta, slot;
	__u32 key;

	s = bpf_map_lookup_elem(&starts, &tid);
	if (!s)
		return 0;
	delta = bpf_ktime_get_ns() - s->ts;
	key = s->id;
	bpf_map_delete_elem(&starts, &tid);

	st = bpf_map_lookup_elem(&stats, &key);
	if (!st) {
		bpf_map_update_elem(&stats, &key, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &key);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, delta);

	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	key = slot;
	__u64 *c = bpf_map_lookup_elem(&hist, &key);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
