// SPDX-License-Identifier: GPL-2.0
// Fixture of the exporter tests (config tests/bpf/export/export_basic.yaml): counters and
// histograms in ebpf_exporter's conventions, fed by processes whose comm starts with
// "tbx" (the tests rename a child process so that other activity does not count).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_BUCKET 26

struct comm_key {
	char comm[16];
	__u64 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u64);
} syscalls_total SEC(".maps");

struct kind_key {
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, struct kind_key);
	__type(value, __u64);
} percpu_calls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, struct kind_key);
	__type(value, __u64);
} percpu_summed_total SEC(".maps");

struct pid_key {
	__u32 tgid;
	__u8 op;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pid_key);
	__type(value, __u64);
} padded_total SEC(".maps");

struct bucket_key {
	__u64 bucket;
};

#define HIST(name, map_type)                                                                   \
	struct {                                                                           \
		__uint(type, map_type);                                                     \
		__uint(max_entries, 64);                                                   \
		__type(key, struct bucket_key);                                            \
		__type(value, __u64);                                                      \
	} name SEC(".maps")

HIST(write_size_exp2, BPF_MAP_TYPE_HASH);
HIST(write_size_exp2zero, BPF_MAP_TYPE_HASH);
HIST(write_size_linear, BPF_MAP_TYPE_HASH);
HIST(write_size_fixed, BPF_MAP_TYPE_HASH);
HIST(write_size_percpu, BPF_MAP_TYPE_PERCPU_HASH);

struct write_stats {
	__u64 calls;
	__u64 bytes;
	__u32 last_fd;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct write_stats);
} write_stats_total SEC(".maps");

static __always_inline int ours(void)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] == 't' && comm[1] == 'b' && comm[2] == 'x';
}

static __always_inline void add(void *map, void *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);

	if (v) {
		__sync_fetch_and_add(v, n);
	} else if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(map, key); /* created meanwhile */
		if (v)
			__sync_fetch_and_add(v, n);
	}
}

static __always_inline __u64 log2l(__u64 v)
{
	__u64 r = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("raw_tp/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	struct comm_key key = {};

	if (!ours())
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.nr = ctx->args[1];
	add(&syscalls_total, &key, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	struct kind_key key = {.kind = 1};
	struct pid_key pk = {};

	if (!ours())
		return 0;
	add(&percpu_calls_total, &key, 1);
	add(&percpu_summed_total, &key, 1);
	pk.tgid = bpf_get_current_pid_tgid() >> 32;
	pk.op = 2;
	add(&padded_total, &pk, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int hist_write(struct trace_event_raw_sys_enter *ctx)
{
	__u64 count = ctx->args[2];
	struct bucket_key key = {};
	struct write_stats *st;
	__u32 zero = 0;

	if (!ours())
		return 0;

	/* exp2: bucket b counts values in (2^(b-1), 2^b]; capped; the sum in MAX_BUCKET+1 */
	key.bucket = count ? log2l(count - 1) + (count > 1) : 0;
	if (key.bucket > MAX_BUCKET)
		key.bucket = MAX_BUCKET;
	add(&write_size_exp2, &key, 1);
	add(&write_size_percpu, &key, 1);
	key.bucket = MAX_BUCKET + 1;
	add(&write_size_exp2, &key, count);
	add(&write_size_percpu, &key, count);

	/* exp2zero: 0 for zero, log2 + 1 otherwise */
	key.bucket = count ? log2l(count - 1) + (count > 1) + 1 : 0;
	if (key.bucket > MAX_BUCKET)
		key.bucket = MAX_BUCKET;
	add(&write_size_exp2zero, &key, 1);
	key.bucket = MAX_BUCKET + 1;
	add(&write_size_exp2zero, &key, count);

	/* linear: by 100 bytes, 0..20, the sum in 21 */
	key.bucket = (count + 99) / 100;
	if (key.bucket > 20)
		key.bucket = 20;
	add(&write_size_linear, &key, 1);
	key.bucket = 21; /* the sum, in units of the multiplier (100 bytes) */
	add(&write_size_linear, &key, count / 100);

	/* fixed: keys 1, 10, 100, 1000; the sum in 1001 */
	key.bucket = count <= 1 ? 1 : count <= 10 ? 10 : count <= 100 ? 100 : 1000;
	add(&write_size_fixed, &key, 1);
	key.bucket = 1001;
	add(&write_size_fixed, &key, count);

	st = bpf_map_lookup_elem(&write_stats_total, &zero);
	if (st) {
		__sync_fetch_and_add(&st->calls, 1);
		__sync_fetch_and_add(&st->bytes, count);
		st->last_fd = ctx->args[0];
	}
	return 0;
}
