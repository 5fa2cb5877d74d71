// SPDX-License-Identifier: GPL-2.0
/*
 * Configuration fixture for tests/test_phases.py and tests/test_globals.py.
 *
 * One tracepoint program on getpid(2), configured before load through const volatile
 * globals (.rodata) and a custom read-only section (.rodata.cfg):
 *   target_pid  only calls from this tgid are recorded (0: every process)
 *   invert      record every process *except* target_pid
 *   tag         a value copied into each record, to show custom .rodata.* sections
 * It records into a hash map (counts: tgid -> calls, 16 entries as compiled; the tests
 * resize it before load) and into counters the tests read live: .bss (hits, last_pid),
 * .data (calls, starts at 100) and a custom .data.stats section (seen_total).
 * last_ppid comes from a CO-RE read of task->real_parent->tgid (for btf_custom_path), and
 * knob from a __kconfig extern (for the kconfig open option). The spare map is used by no
 * program (for autocreate and the map setters).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
const volatile bool invert = false;
const volatile __u64 tag SEC(".rodata.cfg") = 7;

__u64 hits = 0;
__u32 last_pid = 0;
__u64 calls = 100;
__u64 seen_total SEC(".data.stats") = 0;
__u32 last_ppid = 0;
__u64 knob = 0;

extern __u64 CONFIG_TINYBPF_TEST_KNOB __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} spare SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	__u64 one = 1, *v;
	bool match;

	__sync_fetch_and_add(&seen_total, 1);
	match = !target_pid || pid == target_pid;
	if (invert)
		match = target_pid && pid != target_pid;
	if (!match)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	__sync_fetch_and_add(&calls, 1);
	last_pid = pid;
	last_ppid = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent, tgid);
	knob = CONFIG_TINYBPF_TEST_KNOB;
	bpf_map_update_elem(&tags, &zero, (__u64 *)&tag, BPF_ANY);
	v = bpf_map_lookup_elem(&counts, &pid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
	return 0;
}

/* off by default (autoload is switched on by a test): a second program in the object */
SEC("?tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__sync_fetch_and_add(&hits, 1000);
	return 0;
}
