// SPDX-License-Identifier: GPL-2.0
// USDT program of the USDT tests: counts hits of myprov:myprobe (hits[0]), sums its first
// argument (hits[1]), keeps the last second argument (hits[2]) and cookie (hits[3]).
//
// Not in tests/bpf: <bpf/usdt.bpf.h> includes <linux/errno.h>, whose <asm/errno.h> lives in
// the multiarch include directory that 'make compile' (and 'tinybpf compile') do not pass
// to clang -target bpf. The USDT test fixture compiles this file with that directory added.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void add(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&hits, &idx);

	if (c)
		__sync_fetch_and_add(c, n);
}

static __always_inline void set(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&hits, &idx);

	if (c)
		*c = n;
}

SEC("usdt")
int BPF_USDT(on_usdt, int a, long b)
{
	add(0, 1);
	add(1, a);
	set(2, b);
	set(3, bpf_usdt_cookie(ctx));
	return 0;
}
