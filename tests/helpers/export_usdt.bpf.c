// SPDX-License-Identifier: GPL-2.0
// USDT program of the exporter tests, in ebpf_exporter's SEC("usdt/<binary>:<provider>:
// <name>") form: counts myprov:myprobe of usdt_target by its first argument. The binary's
// path is only known when the test has built it: the test compiles this file with
// -DUSDT_TARGET='"<path>"' (and the multiarch include directory, see usdt_probe.bpf.c).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} usdt_probes_total SEC(".maps");

SEC("usdt/" USDT_TARGET ":myprov:myprobe")
int BPF_USDT(on_myprobe, long a, long b)
{
	__u64 key = a, one = 1, *v;

	v = bpf_map_lookup_elem(&usdt_probes_total, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&usdt_probes_total, &key, &one, BPF_NOEXIST);
	return 0;
}
