// SPDX-License-Identifier: GPL-2.0
/*
 * C baseline for bench/run.py: the same workloads as bench/tinybpf_bench.py, written
 * directly against the same static libbpf 1.7.
 *
 *   bench_c map      OBJ REPS PASSES        10k u32->u64 hash: lookups, then updates
 *   bench_c iter     OBJ REPS               100k hash: key by key, and lookup_batch
 *   bench_c ring     OBJ REPS TOTAL CHUNK   ring buffer: produce (test_run) + consume
 *   bench_c perf     OBJ REPS TOTAL CHUNK PERIOD   perf buffer, same
 *   bench_c openload OBJ REPS ITERS         open + load + close of a small object
 *
 * Each repetition prints one JSON object on its own line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct event {
	__u32 pid;
	__u32 seq;
	__u64 ts;
	__u64 a;
	__u64 b;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_c: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

static struct bpf_object *load(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int err;

	if (!obj)
		die("open", errno);
	err = bpf_object__load(obj);
	if (err)
		die("load", err);
	return obj;
}

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		die(name, ENOENT);
	return bpf_map__fd(m);
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!p)
		die(name, ENOENT);
	return bpf_program__fd(p);
}

/* --- (1) single lookups and updates ------------------------------------------------ */
static int cmd_map(const char *path, int reps, int passes)
{
	struct bpf_object *obj = load(path);
	int fd = map_fd(obj, "h10k");
	const __u32 n = 10000;
	volatile __u64 sink = 0;

	for (__u32 k = 0; k < n; k++) {
		__u64 v = k * 3ULL;

		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			die("update", errno);
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now();

		for (int p = 0; p < passes; p++)
			for (__u32 k = 0; k < n; k++) {
				__u64 v;

				if (bpf_map_lookup_elem(fd, &k, &v))
					die("lookup", errno);
				sink += v;
			}
		double t1 = now();

		for (int p = 0; p < passes; p++)
			for (__u32 k = 0; k < n; k++) {
				__u64 v = k + p;

				if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
					die("update", errno);
			}
		double t2 = now();
		double ops = (double)n * passes;

		printf("{\"lookup_per_s\": %.1f, \"update_per_s\": %.1f}\n", ops / (t1 - t0),
		       ops / (t2 - t1));
		fflush(stdout);
	}
	bpf_object__close(obj);
	return 0;
}

/* --- (1b) a 10k-entry mmap-able array: syscalls vs reading and writing the mapping ---- */
static int cmd_mmap(const char *path, int reps, int passes)
{
	struct bpf_object *obj = load(path);
	int fd = map_fd(obj, "marr");
	const __u32 n = 10000;
	size_t len = ((size_t)n * 8 + 4095) & ~(size_t)4095;
	volatile __u64 *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	volatile __u64 sink = 0;

	if (mem == MAP_FAILED)
		die("mmap", errno);
	for (__u32 k = 0; k < n; k++)
		mem[k] = k * 3ULL;
	for (int r = 0; r < reps; r++) {
		double t0 = now();

		for (int p = 0; p < passes; p++)
			for (__u32 k = 0; k < n; k++) {
				__u64 v;

				if (bpf_map_lookup_elem(fd, &k, &v))
					die("lookup", errno);
				sink += v;
			}
		double t1 = now();

		for (int p = 0; p < passes; p++)
			for (__u32 k = 0; k < n; k++)
				sink += mem[k];
		double t2 = now();

		for (int p = 0; p < passes; p++)
			for (__u32 k = 0; k < n; k++)
				mem[k] = k + p;
		double t3 = now();
		double ops = (double)n * passes;

		printf("{\"syscall_lookup_per_s\": %.1f, \"read_per_s\": %.1f, \"write_per_s\": %.1f}\n",
		       ops / (t1 - t0), ops / (t2 - t1), ops / (t3 - t2));
		fflush(stdout);
	}
	munmap((void *)mem, len);
	bpf_object__close(obj);
	return 0;
}

/* --- (2) iteration of a 100k-entry hash ----------------------------------------------- */
static int cmd_iter(const char *path, int reps)
{
	struct bpf_object *obj = load(path);
	int fd = map_fd(obj, "h100k");
	const __u32 n = 100000, chunk = 4096;
	__u32 *keys = calloc(chunk, sizeof(*keys));
	__u64 *vals = calloc(chunk, sizeof(*vals));

	for (__u32 k = 0; k < n; k++) {
		__u64 v = k * 7ULL;

		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			die("update", errno);
	}
	for (int r = 0; r < reps; r++) {
		__u64 sum1 = 0, sum2 = 0;
		__u32 seen1 = 0, seen2 = 0;
		double t0 = now();
		__u32 key, next;
		void *prev = NULL;

		/* key by key: get_next_key + lookup per entry */
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			__u64 v;

			if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
				sum1 += v;
				seen1++;
			}
			key = next;
			prev = &key;
		}
		double t1 = now();

		/* batched */
		__u32 in_batch = 0, out_batch = 0;
		int first = 1;

		for (;;) {
			__u32 count = chunk;
			int err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys,
						       vals, &count, NULL);

			if (err && errno != ENOENT)
				die("lookup_batch", errno);
			for (__u32 i = 0; i < count; i++)
				sum2 += vals[i];
			seen2 += count;
			if (err)
				break;
			in_batch = out_batch;
			first = 0;
		}
		double t2 = now();

		if (seen1 != n || seen2 != n || sum1 != sum2) {
			fprintf(stderr, "bench_c: iteration saw %u/%u entries\n", seen1, seen2);
			return 1;
		}
		printf("{\"keybykey_s\": %.6f, \"batch_s\": %.6f, \"entries\": %u}\n", t1 - t0,
		       t2 - t1, n);
		fflush(stdout);
	}
	bpf_object__close(obj);
	return 0;
}

/* --- (3) ring buffer ---------------------------------------------------------------- */
struct counter {
	__u64 events;
	__u64 sum;
};

static int on_ring(void *ctx, void *data, size_t size)
{
	struct counter *c = ctx;
	const struct event *e = data;

	c->sum += e->seq;
	c->events++;
	return 0;
}

static __u64 read_dropped(struct bpf_object *obj)
{
	__u32 zero = 0;
	__u64 v = 0;

	if (bpf_map_lookup_elem(map_fd(obj, "drops"), &zero, &v))
		die("lookup drops", errno);
	return v;
}

static int cmd_ring(const char *path, int reps, long total, long chunk)
{
	struct bpf_object *obj = load(path);
	int pfd = prog_fd(obj, "produce_ring");
	struct counter c = {};
	struct ring_buffer *rb = ring_buffer__new(map_fd(obj, "rb"), on_ring, &c, NULL);

	if (!rb)
		die("ring_buffer__new", errno);
	/* warm-up: two chunks touch every page of the 64 MiB ring */
	for (int i = 0; i < 2; i++) {
		__u64 n = chunk;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &n, .ctx_size_in = sizeof(n));

		if (bpf_prog_test_run_opts(pfd, &opts))
			die("test_run produce_ring", errno);
		ring_buffer__consume(rb);
	}
	for (int r = 0; r < reps; r++) {
		double produce = 0, consume = 0;
		long done = 0;

		c.events = 0;
		while (done < total) {
			__u64 n = chunk < total - done ? chunk : total - done;
			LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &n, .ctx_size_in = sizeof(n));
			double t0 = now();
			int err = bpf_prog_test_run_opts(pfd, &opts);
			double t1 = now();

			if (err)
				die("test_run produce_ring", err);
			int got = ring_buffer__consume(rb);
			double t2 = now();

			if (got < 0)
				die("ring_buffer__consume", got);
			produce += t1 - t0;
			consume += t2 - t1;
			done += n;
		}
		printf("{\"events\": %llu, \"expected\": %ld, \"dropped\": %llu, "
		       "\"produce_per_s\": %.1f, \"consume_per_s\": %.1f}\n",
		       (unsigned long long)c.events, total, (unsigned long long)read_dropped(obj),
		       total / produce, c.events / consume);
		fflush(stdout);
	}
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

/* --- (4) perf buffer ---------------------------------------------------------------- */
static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	struct counter *c = ctx;
	const struct event *e = data;

	c->sum += e->seq;
	c->events++;
}

static __u64 lost_total;

static void on_lost(void *ctx, int cpu, __u64 cnt)
{
	lost_total += cnt;
}

static int cmd_perf(const char *path, int reps, long total, long chunk, int period, int pages)
{
	struct bpf_object *obj = load(path);
	int pfd = prog_fd(obj, "produce_perf");
	struct counter c = {};
	LIBBPF_OPTS(perf_buffer_opts, pbo, .sample_period = period);
	struct perf_buffer *pb =
		perf_buffer__new(map_fd(obj, "pb"), pages, on_perf, on_lost, &c, &pbo);

	if (!pb)
		die("perf_buffer__new", errno);
	for (int i = 0; i < 4; i++) { /* warm-up */
		__u64 n = chunk;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &n, .ctx_size_in = sizeof(n));

		if (bpf_prog_test_run_opts(pfd, &opts))
			die("test_run produce_perf", errno);
		perf_buffer__consume(pb);
	}
	for (int r = 0; r < reps; r++) {
		double produce = 0, consume = 0;
		long done = 0;

		c.events = 0;
		while (done < total) {
			__u64 n = chunk < total - done ? chunk : total - done;
			LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &n, .ctx_size_in = sizeof(n));
			double t0 = now();
			int err = bpf_prog_test_run_opts(pfd, &opts);
			double t1 = now();

			if (err)
				die("test_run produce_perf", err);
			int got = perf_buffer__consume(pb);
			double t2 = now();

			if (got < 0)
				die("perf_buffer__consume", got);
			produce += t1 - t0;
			consume += t2 - t1;
			done += n;
		}
		printf("{\"events\": %llu, \"expected\": %ld, \"dropped\": %llu, \"lost\": %llu, "
		       "\"produce_per_s\": %.1f, \"consume_per_s\": %.1f}\n",
		       (unsigned long long)c.events, total, (unsigned long long)read_dropped(obj),
		       (unsigned long long)lost_total, total / produce, c.events / consume);
		fflush(stdout);
	}
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}

/* --- (5) open + load + close -------------------------------------------------------- */
static int cmd_openload(const char *path, int reps, int iters)
{
	for (int i = 0; i < 5; i++) /* warm-up: feature probes, page cache */
		bpf_object__close(load(path));
	for (int r = 0; r < reps; r++) {
		double t0 = now();

		for (int i = 0; i < iters; i++)
			bpf_object__close(load(path));
		printf("{\"per_iter_s\": %.9f}\n", (now() - t0) / iters);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_c map|iter|ring|perf|openload OBJ REPS ...\n");
		return 2;
	}
	libbpf_set_print(quiet);
	const char *cmd = argv[1], *path = argv[2];
	int reps = atoi(argv[3]);

	if (!strcmp(cmd, "map") && argc == 5)
		return cmd_map(path, reps, atoi(argv[4]));
	if (!strcmp(cmd, "mmap") && argc == 5)
		return cmd_mmap(path, reps, atoi(argv[4]));
	if (!strcmp(cmd, "iter"))
		return cmd_iter(path, reps);
	if (!strcmp(cmd, "ring") && argc == 6)
		return cmd_ring(path, reps, atol(argv[4]), atol(argv[5]));
	if (!strcmp(cmd, "perf") && argc == 8)
		return cmd_perf(path, reps, atol(argv[4]), atol(argv[5]), atoi(argv[6]),
				atoi(argv[7]));
	if (!strcmp(cmd, "openload") && argc == 5)
		return cmd_openload(path, reps, atoi(argv[4]));
	fprintf(stderr, "bench_c: bad arguments\n");
	return 2;
}
