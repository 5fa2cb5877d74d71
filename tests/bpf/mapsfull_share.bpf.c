// SPDX-License-Identifier: GPL-2.0
/*
 * Shared-map fixture for tests/test_maps_full.py: the test creates a map from Python and
 * hands it to two objects with reuse_fd() before load; put writes it in one object, get
 * reads it in the other.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} mf_shared SEC(".maps");

struct kv_args {
	__u32 key;
	__u32 found; /* out (get) */
	__u64 value; /* in (put) / out (get) */
};

SEC("syscall")
int put(struct kv_args *args)
{
	__u32 key = args->key;
	__u64 value = args->value;

	return bpf_map_update_elem(&mf_shared, &key, &value, BPF_ANY);
}

SEC("syscall")
int get(struct kv_args *args)
{
	__u32 key = args->key;
	__u64 *v = bpf_map_lookup_elem(&mf_shared, &key);

	args->found = v != 0;
	args->value = v ? *v : 0;
	return 0;
}
