// SPDX-License-Identifier: GPL-2.0
// A resizable global array for tests/test_globals.py: counters[] is the last variable of
// the custom .data.counters section, whose size (the map's value_size) the test changes
// before load. On each getpid() of the tgid in target_pid the program adds 1 to
// counters[n_counters - 1] and counts the calls in calls.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
const volatile __u32 n_counters = 2;

__u32 calls SEC(".data.counters") = 0;
__u64 counters[2] SEC(".data.counters") = {};

SEC("tp/syscalls/sys_enter_getpid")
int bump_last(void *ctx)
{
	__u32 i = n_counters - 1;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__sync_fetch_and_add(&calls, 1);
	if (i < 64)
		__sync_fetch_and_add(&counters[i], 1);
	return 0;
}
