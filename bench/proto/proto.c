/*
 * Prototype of the "drain in C, hand Python a batch" path, built by bench/proto/build.py
 * into bench/build/_bench_proto*.so against the same static libbpf. Not part of tinybpf:
 * it shows what a batch mode in the library can reach (rows marked "raw" in the table).
 *
 * Samples of exactly d->esize bytes are copied back to back into d->buf; d->len is the
 * byte count of the last drain. A sample of another size sets d->bad.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

struct proto_drain {
	char *buf;
	size_t cap;
	size_t len;
	size_t esize;
	int bad;
	unsigned long long lost;
};

static int proto_copy(struct proto_drain *d, const void *data, size_t size)
{
	if (size < d->esize) {
		d->bad = 1;
		return 0;
	}
	if (d->len + d->esize > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1 << 20;
		char *p = realloc(d->buf, cap);

		if (!p)
			return -ENOMEM;
		d->buf = p;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, data, d->esize);
	d->len += d->esize;
	return 0;
}

static int proto_ring_cb(void *ctx, void *data, size_t size)
{
	struct proto_drain *d = ctx;

	if (size != d->esize)
		d->bad = 1;
	return proto_copy(d, data, size);
}

static int proto_noop_cb(void *ctx, void *data, size_t size)
{
	return 0;
}

static struct ring_buffer *proto_ring_new(int fd, struct proto_drain *d)
{
	if (!d->buf) {
		d->buf = malloc(d->cap);
		if (!d->buf)
			return NULL;
	}
	return ring_buffer__new(fd, proto_ring_cb, d, NULL);
}

static struct ring_buffer *proto_ring_new_noop(int fd)
{
	return ring_buffer__new(fd, proto_noop_cb, NULL, NULL);
}

/* at most cap/esize samples, so the batch never grows and stays in cache */
static int proto_ring_drain(struct ring_buffer *rb, struct proto_drain *d)
{
	d->len = 0;
	return ring_buffer__consume_n(rb, d->cap / d->esize);
}

static int proto_ring_skip(struct ring_buffer *rb)
{
	return ring_buffer__consume(rb);
}

static void proto_ring_free(struct ring_buffer *rb)
{
	ring_buffer__free(rb);
}

static void proto_perf_cb(void *ctx, int cpu, void *data, __u32 size)
{
	proto_copy(ctx, data, size);
}

static void proto_perf_lost(void *ctx, int cpu, __u64 cnt)
{
	((struct proto_drain *)ctx)->lost += cnt;
}

static struct perf_buffer *proto_perf_new(int fd, size_t pages, int period, struct proto_drain *d)
{
	LIBBPF_OPTS(perf_buffer_opts, opts, .sample_period = period);

	return perf_buffer__new(fd, pages, proto_perf_cb, proto_perf_lost, d, &opts);
}

/* perf_buffer__consume has no "at most n": the batch grows to what is there */
static int proto_perf_drain(struct perf_buffer *pb, struct proto_drain *d)
{
	int err;

	d->len = 0;
	err = perf_buffer__consume(pb);
	return err < 0 ? err : (int)(d->len / d->esize);
}

static void proto_perf_free(struct perf_buffer *pb)
{
	perf_buffer__free(pb);
}
