// SPDX-License-Identifier: GPL-2.0
/*
 * Map-in-map fixture for tests/test_maps_full.py.
 *
 * mf_outer is an ARRAY_OF_MAPS whose inner template libbpf builds from struct inner_t.
 * mf_outer_h is a HASH_OF_MAPS with no inner definition: the test hands it a template with
 * set_inner_map() before load. read_outer/read_outer_h look up slot -> inner map -> idx
 * and write what they found into their context (written back by BPF_PROG_TEST_RUN).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct inner_t {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_t);
} mf_outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} mf_outer_h SEC(".maps");

struct mim_args {
	__u32 slot;
	__u32 idx;
	__u32 has_inner; /* out */
	__u32 has_value; /* out */
	__u64 value; /* out */
};

static __always_inline int read_inner(void *inner, struct mim_args *args)
{
	__u32 idx = args->idx;
	__u64 *v;

	args->has_inner = inner != 0;
	args->has_value = 0;
	args->value = 0;
	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &idx);
	if (v) {
		args->has_value = 1;
		args->value = *v;
	}
	return 0;
}

SEC("syscall")
int read_outer(struct mim_args *args)
{
	__u32 slot = args->slot;

	return read_inner(bpf_map_lookup_elem(&mf_outer, &slot), args);
}

SEC("syscall")
int read_outer_h(struct mim_args *args)
{
	__u32 slot = args->slot;

	return read_inner(bpf_map_lookup_elem(&mf_outer_h, &slot), args);
}
