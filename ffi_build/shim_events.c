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
	__u32 *sizes;     /* size of each sample */
	__u32 *cpus;      /* perf buffers: CPU of each sample */
	size_t count;
	size_t sizes_cap;
	size_t max_events;
	__u32 trim;       /* >0: keep only this many bytes of samples up to 7 bytes longer */
	__u64 lost;       /* perf buffers: samples the kernel reported lost */
	int err;
	size_t hint;      /* capacity of the previous batch, to start the next one at */
	__u32 uniform;    /* the size of every record so far when they all have one, else 0 */
	__u32 lost_records; /* perf: also append each lost count as a record (callback mode) */
	size_t sizes_hint; /* sizes_cap of the previous batch, to start the next one at */
};

/* One per ring buffer map: which batch to fill, and the map's index in it. */
struct tinybpf_batch_src {
	struct tinybpf_batch *b;
	__u32 idx;
};

/* cpus[] of a perf "lost" record: the CPU with this bit set; its data is the u64 count */
#define TINYBPF_LOST_FLAG 0x80000000u

__attribute__((noinline, cold)) static int tinybpf_batch_reserve(struct tinybpf_batch *b,
							    size_t size)
{
	if (b->len + size > b->cap) {
		size_t cap = b->cap ? b->cap : (b->hint > (1 << 16) ? b->hint : 1 << 16);
		char *p;

		while (cap < b->len + size)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (b->count == b->sizes_cap) {
		size_t cap = b->sizes_cap ? b->sizes_cap * 2
					  : (b->sizes_hint > 4096 ? b->sizes_hint : 4096);
		__u32 *s = realloc(b->sizes, cap * sizeof(*s));
		__u32 *c;

		if (!s)
			return -ENOMEM;
		b->sizes = s;
		c = realloc(b->cpus, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		b->cpus = c;
		b->sizes_cap = cap;
	}
	return 0;
}

static int tinybpf_batch_append(struct tinybpf_batch *b, int cpu, const void *data, size_t size)
{
	int err;

	if (b->trim && size >= b->trim && size - b->trim < 8)
		size = b->trim;
	if (b->len + size > b->cap || b->count == b->sizes_cap) {
		err = tinybpf_batch_reserve(b, size); /* (out of line: rare) */
		if (err) {
			b->err = err;
			return err;
		}
	}
	memcpy(b->data + b->len, data, size);
	b->len += size;
	if (b->count == 0)
		b->uniform = (__u32)size;
	else if (b->uniform != size)
		b->uniform = 0;
	b->sizes[b->count] = (__u32)size;
	b->cpus[b->count] = (__u32)cpu;
	b->count++;
	/* the sample is copied: stopping here loses nothing */
	return b->count >= b->max_events ? -EAGAIN : 0;
}

static int tinybpf_batch_ring_sample(void *ctx, void *data, size_t size)
{
	struct tinybpf_batch_src *src = ctx;

	return tinybpf_batch_append(src->b, (int)src->idx, data, size);
}

static void tinybpf_batch_perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
	tinybpf_batch_append(ctx, cpu, data, size);
}

static void tinybpf_batch_perf_lost(void *ctx, int cpu, __u64 cnt)
{
	struct tinybpf_batch *b = ctx;
	__u32 trim = b->trim;

	b->lost += cnt;
	if (!b->lost_records)
		return; /* batch mode: counted in b->lost only, never an event */
	/* also a record, so lost counts reach the lost callback in order with the samples */
	b->trim = 0;
	if (tinybpf_batch_append(b, (int)((__u32)cpu | TINYBPF_LOST_FLAG), &cnt, sizeof(cnt)) ==
	    -ENOMEM)
		b->err = -ENOMEM;
	b->trim = trim;
}

static struct ring_buffer *tinybpf_batch_ring_new(int map_fd, struct tinybpf_batch_src *src)
{
	return ring_buffer__new(map_fd, tinybpf_batch_ring_sample, src, NULL);
}

static int tinybpf_batch_ring_add(struct ring_buffer *rb, int map_fd,
				  struct tinybpf_batch_src *src)
{
	return ring_buffer__add(rb, map_fd, tinybpf_batch_ring_sample, src);
}

static struct perf_buffer *tinybpf_batch_perf_new(int map_fd, size_t page_cnt,
						  struct tinybpf_batch *b,
						  const struct perf_buffer_opts *opts)
{
	return perf_buffer__new(map_fd, page_cnt, tinybpf_batch_perf_sample,
				tinybpf_batch_perf_lost, b, opts);
}

/* Hand the filled buffers to the caller (who frees them with tinybpf_free) and start new
 * ones sized like the last, so views of earlier batches stay valid. */
static void tinybpf_batch_take(struct tinybpf_batch *b, char **data, __u32 **sizes, __u32 **cpus)
{
	*data = b->data;
	*sizes = b->sizes;
	*cpus = b->cpus;
	b->hint = b->cap;
	b->sizes_hint = b->sizes_cap;
	b->data = NULL;
	b->sizes = NULL;
	b->cpus = NULL;
	b->cap = 0;
	b->sizes_cap = 0;
	b->len = 0;
	b->count = 0;
	b->uniform = 0;
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
}
