/* tinybpf's C shim: perf_event_open(2) and the batch mode of ring and perf buffers.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

/* ---- perf_event_open(2): no libc wrapper exists -------------------------------------- */

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TINYBPF_PERF_TYPE_HARDWARE PERF_TYPE_HARDWARE
#define TINYBPF_PERF_TYPE_SOFTWARE PERF_TYPE_SOFTWARE
#define TINYBPF_PERF_COUNT_SW_CPU_CLOCK PERF_COUNT_SW_CPU_CLOCK
#define TINYBPF_PERF_COUNT_HW_CPU_CYCLES PERF_COUNT_HW_CPU_CYCLES

static int tinybpf_perf_event_open(__u32 type, __u64 config, int pid, int cpu, __u64 sample,
				   int use_freq, int wakeup_events)
{
	struct perf_event_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = type;
	attr.config = config;
	attr.freq = use_freq ? 1 : 0;
	if (use_freq)
		attr.sample_freq = sample;
	else
		attr.sample_period = sample;
	attr.wakeup_events = wakeup_events > 0 ? (__u32)wakeup_events : 1;
	fd = syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return (int)fd;
}

/* ---- batch mode: samples drained in C into one buffer, handed to Python per poll ----- */

struct tinybpf_batch {
	char *data;       /* packed sample bytes; Python takes ownership after each poll */
	size_t len;
	size_t cap;
	__u32 *sizes;     /* with detail: the size of each sample */
	__u32 *cpus;      /* with detail: perf buffers: the CPU of each sample; ring: map index */
	size_t count;
	size_t sizes_cap;
	size_t max_events;
	__u32 trim;       /* >0: keep only this many bytes of samples up to 7 bytes longer */
	__u64 lost;       /* perf buffers: samples the kernel reported lost */
	int err;
	size_t hint;      /* capacity of the previous batch, to start the next one at */
	__u32 uniform;    /* without detail: the size of every record (> 0); with it, the
			   * size of every record when they all have one, else 0 */
	__u32 lost_records; /* perf: also append each lost count as a record (callback mode) */
	size_t sizes_hint; /* sizes_cap of the previous batch, to start the next one at */
	__u32 cpu0;       /* without detail: the cpu (map index) of every record */
	size_t fast;      /* the size of every record + 1 while none differed, else 0 */
	__u32 detail;     /* sizes[] and cpus[] hold every record: some record differed from
			   * the first in size or cpu, or the first was empty. Until then the
			   * two arrays are not written at all (no stores per record) */
};

/* cpus[] of a perf "lost" record: the CPU with this bit set; its data is the u64 count */
#define TINYBPF_LOST_FLAG 0x80000000u

__attribute__((noinline, cold)) static int tinybpf_batch_grow(struct tinybpf_batch *b,
							 size_t size)
{
	size_t cap = b->cap ? b->cap : (b->hint > (1 << 16) ? b->hint : 1 << 16);
	char *p;

	while (cap < b->len + size)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Room in sizes[]/cpus[] for one more record; the first time in a batch, fill in the
 * records so far (all of size `uniform` from `cpu0`). */
__attribute__((noinline, cold)) static int tinybpf_batch_detail(struct tinybpf_batch *b)
{
	size_t i;

	if (b->count >= b->sizes_cap) {
		size_t cap = b->sizes_cap ? b->sizes_cap * 2
					  : (b->sizes_hint > 4096 ? b->sizes_hint : 4096);
		__u32 *s, *c;

		while (cap <= b->count)
			cap *= 2;
		s = realloc(b->sizes, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		b->sizes = s;
		c = realloc(b->cpus, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		b->cpus = c;
		b->sizes_cap = cap;
	}
	if (!b->detail) {
		for (i = 0; i < b->count; i++) {
			b->sizes[i] = b->uniform;
			b->cpus[i] = b->cpu0;
		}
		b->detail = 1;
	}
	return 0;
}

/* Any record: the first of a batch, one of another size or cpu than the first, or one
 * that needs more room. */
__attribute__((noinline)) static int tinybpf_batch_append_slow(struct tinybpf_batch *b,
							      __u32 cpu, const void *data,
							      size_t size)
{
	int err;

	if (b->len + size > b->cap) {
		err = tinybpf_batch_grow(b, size);
		if (err)
			goto fail;
	}
	if (b->count == 0 && size) {
		b->uniform = (__u32)size;
		b->cpu0 = cpu;
		b->fast = size + 1;
	} else if (b->detail || size != b->uniform || cpu != b->cpu0 || b->count == 0) {
		if (!b->detail || b->count == b->sizes_cap) {
			err = tinybpf_batch_detail(b);
			if (err)
				goto fail;
		}
		b->fast = 0;
		if (b->count == 0 || b->uniform != size)
			b->uniform = 0;
		b->sizes[b->count] = (__u32)size;
		b->cpus[b->count] = cpu;
	}
	memcpy(b->data + b->len, data, size);
	b->len += size;
	b->count++;
	/* the sample is copied: stopping here loses nothing */
	return b->count >= b->max_events ? -EAGAIN : 0;
fail:
	b->err = err;
	return err;
}

static inline int tinybpf_batch_append(struct tinybpf_batch *b, __u32 cpu, const void *data,
				       size_t size)
{
	size_t len = b->len;

	/* the common case, a few instructions per record: one more like the first of the
	 * batch (b->fast is its size + 1 until a record differs), with room for it */
	if (size + 1 == b->fast && cpu == b->cpu0 && len + size <= b->cap) {
		memcpy(b->data + len, data, size);
		b->len = len + size;
		return ++b->count >= b->max_events ? -EAGAIN : 0;
	}
	return tinybpf_batch_append_slow(b, cpu, data, size);
}

static void tinybpf_batch_perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct tinybpf_batch *b = ctx;
	size_t n = size;

	if (b->trim && n >= b->trim && n - b->trim < 8)
		n = b->trim;
	tinybpf_batch_append(b, (__u32)cpu, data, n);
}

static void tinybpf_batch_perf_lost(void *ctx, int cpu, __u64 cnt)
{
	struct tinybpf_batch *b = ctx;

	b->lost += cnt;
	if (!b->lost_records)
		return; /* batch mode: counted in b->lost only, never an event */
	/* also a record, so lost counts reach the lost callback in order with the samples */
	if (tinybpf_batch_append(b, (__u32)cpu | TINYBPF_LOST_FLAG, &cnt, sizeof(cnt)) == -ENOMEM)
		b->err = -ENOMEM;
}

static struct perf_buffer *tinybpf_batch_perf_new(int map_fd, size_t page_cnt,
						  struct tinybpf_batch *b,
						  const struct perf_buffer_opts *opts)
{
	return perf_buffer__new(map_fd, page_cnt, tinybpf_batch_perf_sample,
				tinybpf_batch_perf_lost, b, opts);
}

/* ---- ring buffers read directly: the records of each map copied into the batch -------
 *
 * libbpf's ring_buffer__consume() calls a callback per record, which then copies it. The
 * reader below maps each ring itself (the kernel's ring buffer mmap layout: a consumer
 * page the reader writes, then the producer page and the data pages, mapped twice in a
 * row so that a record that wraps around is contiguous) and copies the records in one
 * loop, with the same ordering rules as libbpf: the producer position and each record
 * header read with acquire, the consumer position stored with release after each record,
 * a record still being written (busy bit) ends the read of that ring, discarded records
 * are skipped. The reader's epoll fd has every map fd (readable when its ring has data),
 * as libbpf's ring_buffer has.
 */

#include <sys/mman.h>
#include <sys/epoll.h>

struct tinybpf_ring_view {
	unsigned long *consumer_pos;
	const unsigned long *producer_pos;
	const char *data;
	unsigned long mask;
	size_t data_size;
	size_t page_size;
	__u32 idx;
};

struct tinybpf_ring_reader {
	struct tinybpf_batch *b;
	struct tinybpf_ring_view *rings;
	size_t count;
	int epoll_fd;
};

/* A reader filling batch b, with no ring yet; NULL with errno set on failure. */
static struct tinybpf_ring_reader *tinybpf_ring_reader_new(struct tinybpf_batch *b)
{
	struct tinybpf_ring_reader *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	r->b = b;
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epoll_fd < 0) {
		err = errno;
		free(r);
		errno = err;
		return NULL;
	}
	return r;
}

static void tinybpf_ring_view_unmap(struct tinybpf_ring_view *v)
{
	munmap(v->consumer_pos, v->page_size);
	munmap((void *)v->producer_pos, v->page_size + 2 * v->data_size);
}

/* Map a BPF_MAP_TYPE_RINGBUF map for reading as source `idx` and add its fd to the
 * reader's epoll fd; 0 or -errno (the reader unchanged). */
static int tinybpf_ring_reader_add(struct tinybpf_ring_reader *r, int map_fd, __u32 idx)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	struct tinybpf_ring_view *rings, *v;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct epoll_event ev;
	void *cons, *prod;

	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(map_fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries ||
	    (info.max_entries & (info.max_entries - 1)))
		return -EINVAL;
	rings = realloc(r->rings, (r->count + 1) * sizeof(*rings));
	if (!rings)
		return -ENOMEM;
	r->rings = rings;
	cons = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (cons == MAP_FAILED)
		return -errno;
	prod = mmap(NULL, page + 2 * (size_t)info.max_entries, PROT_READ, MAP_SHARED, map_fd,
		    (off_t)page);
	if (prod == MAP_FAILED) {
		int err = -errno;

		munmap(cons, page);
		return err;
	}
	v = &rings[r->count];
	v->consumer_pos = cons;
	v->producer_pos = prod;
	v->data = (const char *)prod + page;
	v->mask = info.max_entries - 1;
	v->data_size = info.max_entries;
	v->page_size = page;
	v->idx = idx;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = idx;
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, map_fd, &ev)) {
		int err = -errno;

		tinybpf_ring_view_unmap(v);
		return err;
	}
	r->count++;
	return 0;
}

/* Copy a record of `padded` bytes (its size rounded up to 8, as the ring stores it; the
 * destination has room for that much too) without a call to memcpy for records of up to
 * 64 bytes: two overlapping fixed-size copies, as memcpy does for small sizes, but
 * inline, so the read loop keeps its state in registers. */
static inline void tinybpf_copy_record(char *dst, const char *src, size_t padded)
{
	if (padded <= 16) {
		__builtin_memcpy(dst, src, 8);
		__builtin_memcpy(dst + padded - 8, src + padded - 8, 8);
	} else if (padded <= 32) {
		__builtin_memcpy(dst, src, 16);
		__builtin_memcpy(dst + padded - 16, src + padded - 16, 16);
	} else if (padded <= 64) {
		__builtin_memcpy(dst, src, 32);
		__builtin_memcpy(dst + padded - 32, src + padded - 32, 32);
	} else {
		memcpy(dst, src, padded);
	}
}

/* Copy the records of one ring into the batch; 0, or what append returned (-EAGAIN:
 * the batch is full; -ENOMEM) after which the reading stops. The batch's fast-path state
 * lives in locals during the loop and goes back to the batch before anything else looks
 * at it. */
static int tinybpf_ring_view_read(struct tinybpf_ring_view *v, struct tinybpf_batch *b)
{
	unsigned long *consumer_pos = v->consumer_pos;
	const char *ring = v->data;
	unsigned long mask = v->mask;
	unsigned long cons = __atomic_load_n(consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod;
	char *data = b->data;
	size_t len = b->len, cap = b->cap, count = b->count;
	/* records of this ring can take the fast path: the batch's size + 1, else 0 */
	size_t fast = b->cpu0 == v->idx ? b->fast : 0;
	int err = 0;

	while (cons < (prod = __atomic_load_n(v->producer_pos, __ATOMIC_ACQUIRE))) {
		do {
			const __u32 *hdr = (const __u32 *)(ring + (cons & mask));
			__u32 size = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

			if (size & BPF_RINGBUF_BUSY_BIT)
				goto out; /* being written: the rest comes with the next read */
			/* the record with its header, padded to 8 bytes */
			unsigned long step =
				((size & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;

			cons += step;
			if (!(size & BPF_RINGBUF_DISCARD_BIT)) {
				const char *sample = (const char *)hdr + BPF_RINGBUF_HDR_SZ;

				/* (size > 0 here: fast is never 1) */
				if ((size_t)size + 1 == fast &&
				    len + step - BPF_RINGBUF_HDR_SZ <= cap) {
					tinybpf_copy_record(data + len, sample,
							    step - BPF_RINGBUF_HDR_SZ);
					len += size;
					if (++count >= b->max_events)
						err = -EAGAIN;
				} else {
					b->len = len;
					b->count = count;
					err = tinybpf_batch_append_slow(b, v->idx, sample, size);
					data = b->data;
					len = b->len;
					cap = b->cap;
					count = b->count;
					fast = b->cpu0 == v->idx ? b->fast : 0;
				}
				if (err) {
					__atomic_store_n(consumer_pos, cons, __ATOMIC_RELEASE);
					goto out;
				}
			}
			__atomic_store_n(consumer_pos, cons, __ATOMIC_RELEASE);
		} while (cons < prod);
	}
out:
	b->len = len;
	b->count = count;
	return err;
}

/* Every ring once, in the order they were added: the number of records copied, or a
 * negative errno (-EAGAIN: the batch filled up; the rest waits in the rings). */
static long tinybpf_ring_reader_consume(struct tinybpf_ring_reader *r)
{
	size_t before = r->b->count;
	size_t i;
	int err;

	for (i = 0; i < r->count; i++) {
		err = tinybpf_ring_view_read(&r->rings[i], r->b);
		if (err)
			return err;
	}
	return (long)(r->b->count - before);
}

/* Wait up to timeout_ms on the reader's epoll fd, then read every ring: as
 * ring_buffer__poll() (records copied, 0 on timeout, or a negative errno). */
static long tinybpf_ring_reader_poll(struct tinybpf_ring_reader *r, int timeout_ms)
{
	struct epoll_event ev;
	int n = epoll_wait(r->epoll_fd, &ev, 1, timeout_ms);

	if (n < 0)
		return -errno;
	return n ? tinybpf_ring_reader_consume(r) : 0;
}

static void tinybpf_ring_reader_free(struct tinybpf_ring_reader *r)
{
	if (!r)
		return;
	while (r->count)
		tinybpf_ring_view_unmap(&r->rings[--r->count]);
	close(r->epoll_fd); /* (EBADF when a caller closed it behind our back: ignored) */
	free(r->rings);
	free(r);
}

static int tinybpf_ring_reader_epoll_fd(const struct tinybpf_ring_reader *r)
{
	return r->epoll_fd;
}

/* Hand the filled buffers to the caller (who frees them with tinybpf_free) and start new
 * ones sized like the last, so views of earlier batches stay valid. sizes[] and cpus[] go
 * with them only when they describe the records (detail); otherwise *sizes and *cpus are
 * NULL and the arrays stay for the next batch. */
static void tinybpf_batch_take(struct tinybpf_batch *b, char **data, __u32 **sizes, __u32 **cpus)
{
	*data = b->data;
	b->hint = b->cap;
	b->data = NULL;
	b->cap = 0;
	if (b->detail) {
		*sizes = b->sizes;
		*cpus = b->cpus;
		b->sizes_hint = b->sizes_cap;
		b->sizes = NULL;
		b->cpus = NULL;
		b->sizes_cap = 0;
	} else {
		*sizes = NULL;
		*cpus = NULL;
	}
	b->len = 0;
	b->count = 0;
	b->uniform = 0;
	b->detail = 0;
	b->fast = 0;
}

static void tinybpf_batch_free(struct tinybpf_batch *b)
{
	free(b->data);
	free(b->sizes);
	free(b->cpus);
	b->data = NULL;
	b->sizes = NULL;
	b->cpus = NULL;
	b->cap = b->sizes_cap = b->len = b->count = 0;
	b->uniform = 0;
	b->detail = 0;
	b->fast = 0;
}
