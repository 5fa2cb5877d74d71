// SPDX-License-Identifier: GPL-2.0
// mmap-able array maps (BPF_F_MMAPABLE), read and written through their memory by Python
// while a program writes them; all run with BPF_PROG_TEST_RUN only:
//   fill    (syscall) u64s[i] = ctx->base + i and s32s[i] = -(ctx->base + i) for i < ctx->n,
//                     recs[i] = {a = base + i, b = i, tag = "ab", c = -(base + i)},
//                     counter += 1 (.bss), reads u64s[ctx->n] into seen (.bss)
//   emit    (syscall) ctx->n records struct rec into the ring buffer evs, a = base + i
//   emit_mixed, emit_empty, emit_discard (syscall): records of two sizes, of 0 bytes,
//                     and discarded ones (see below)
//   bump    (syscall) u64s[ctx->n] += 1 (atomic), ctx->base times (a concurrent writer)
// (loops through bpf_loop: the verifier walks a plain loop once per iteration)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define N 1000

struct rec {
	__u32 a;
	__u16 b;
	char tag[3];
	__s64 c;
	__u16 pair[2];
	struct {
		__u8 x;
		__u32 y;
	} inner;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, N);
	__type(key, __u32);
	__type(value, __u64);
} u64s SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, N);
	__type(key, __u32);
	__type(value, __s32);
} s32s SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct rec);
} recs SEC(".maps");

/* the same without BPF_F_MMAPABLE: the syscall path */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, N);
	__type(key, __u32);
	__type(value, __u64);
} plain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} evs SEC(".maps");

__u64 counter;
__u64 seen;
const volatile __u32 limit = 7;

struct args {
	__u64 base;
	__u32 n;
};

static long fill_one(__u32 i, struct args *ctx)
{
	__u64 base = ctx->base;
	__u32 k = i;
	__u64 *v = bpf_map_lookup_elem(&u64s, &k);
	__s32 *s = bpf_map_lookup_elem(&s32s, &k);
	struct rec *r = bpf_map_lookup_elem(&recs, &k);

	if (v)
		*v = base + i;
	if (s)
		*s = -(__s32)(base + i);
	if (r) {
		r->a = base + i;
		r->b = i;
		r->tag[0] = 'a';
		r->tag[1] = 'b';
		r->tag[2] = 0;
		r->c = -(__s64)(base + i);
		r->pair[0] = i;
		r->pair[1] = i + 1;
		r->inner.x = i & 0xff;
		r->inner.y = limit;
	}
	return 0;
}

SEC("syscall")
int fill(struct args *ctx)
{
	struct args a = *ctx; /* (bpf_loop takes a stack pointer, not the context) */
	__u32 k = a.n;
	__u64 *v;

	bpf_loop(a.n, fill_one, &a, 0);
	v = bpf_map_lookup_elem(&u64s, &k);
	if (v)
		seen = *v;
	__sync_fetch_and_add(&counter, 1);
	return 0;
}

static long bump_one(__u32 i, struct args *ctx)
{
	__u32 k = ctx->n;
	__u64 *v = bpf_map_lookup_elem(&u64s, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("syscall")
int bump(struct args *ctx)
{
	struct args a = *ctx;

	bpf_loop(a.base, bump_one, &a, 0);
	return 0;
}

static long emit_one(__u32 i, struct args *ctx)
{
	struct rec *r = bpf_ringbuf_reserve(&evs, sizeof(*r), 0);

	if (!r)
		return 1;
	__builtin_memset(r, 0, sizeof(*r));
	r->a = ctx->base + i;
	r->b = i;
	r->tag[0] = 'e';
	r->tag[1] = 'v';
	r->c = -(__s64)i;
	r->pair[0] = i;
	r->pair[1] = 2 * i;
	r->inner.x = 3;
	r->inner.y = i * 10;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("syscall")
int emit(struct args *ctx)
{
	struct args a = *ctx;

	bpf_loop(a.n, emit_one, &a, 0);
	return 0;
}

/* emit_mixed: records i < ctx->base are struct rec (a = i), the rest one __u64 (= i) */
static long emit_mixed_one(__u32 i, struct args *ctx)
{
	if (i < ctx->base) {
		struct rec r = {};

		r.a = i;
		bpf_ringbuf_output(&evs, &r, sizeof(r), 0);
	} else {
		__u64 v = i;

		bpf_ringbuf_output(&evs, &v, sizeof(v), 0);
	}
	return 0;
}

SEC("syscall")
int emit_mixed(struct args *ctx)
{
	struct args a = *ctx;

	bpf_loop(a.n, emit_mixed_one, &a, 0);
	return 0;
}

/* emit_empty: ctx->n records of 0 bytes, then ctx->base records of one __u64 (= i) */
static long emit_empty_one(__u32 i, struct args *ctx)
{
	__u64 v = i;

	if (i < ctx->n)
		bpf_ringbuf_output(&evs, &v, 0, 0);
	else
		bpf_ringbuf_output(&evs, &v, sizeof(v), 0);
	return 0;
}

SEC("syscall")
int emit_empty(struct args *ctx)
{
	struct args a = *ctx;

	bpf_loop(a.n + a.base, emit_empty_one, &a, 0);
	return 0;
}

/* emit_discard: ctx->n records reserved; those with i % 3 == 1 discarded, the rest
 * submitted (a = base + i) */
static long emit_discard_one(__u32 i, struct args *ctx)
{
	struct rec *r = bpf_ringbuf_reserve(&evs, sizeof(*r), 0);

	if (!r)
		return 1;
	__builtin_memset(r, 0, sizeof(*r));
	r->a = ctx->base + i;
	r->b = i;
	if (i % 3 == 1)
		bpf_ringbuf_discard(r, 0);
	else
		bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("syscall")
int emit_discard(struct args *ctx)
{
	struct args a = *ctx;

	bpf_loop(a.n, emit_discard_one, &a, 0);
	return 0;
}
