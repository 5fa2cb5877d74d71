// SPDX-License-Identifier: GPL-2.0
// Loaded through a BPF token by a process in a user namespace (tests/test_token.py):
// an XDP program (needs CAP_BPF and CAP_NET_ADMIN without a token) run with
// BPF_PROG_TEST_RUN that counts packets in a global, per first payload byte in a hash
// map, and sends each packet's length through a ring buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 packets = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} by_byte SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} lengths SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *first = data;
	__u32 key, *len;
	__u64 one = 1, *n;

	if ((void *)(first + 1) > end)
		return XDP_ABORTED;
	__sync_fetch_and_add(&packets, 1);
	key = *first;
	n = bpf_map_lookup_elem(&by_byte, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&by_byte, &key, &one, BPF_ANY);
	len = bpf_ringbuf_reserve(&lengths, sizeof(*len), 0);
	if (len) {
		*len = (__u32)(end - data);
		bpf_ringbuf_submit(len, 0);
	}
	return XDP_PASS;
}
