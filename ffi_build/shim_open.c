/* tinybpf's C shim: open (and load) an object in one crossing, and its name index.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

/* ---- the names of an object's programs and maps in one call -------------------------
 * Every name NUL-terminated (no byte of a name can be mistaken for a separator, whatever
 * the object holds): the object's name, the number of programs in decimal, the programs'
 * names, then the maps' names. Written into buf up to cap; returns the length it needs,
 * which may exceed cap: call again with a bigger buffer. */

static size_t tinybpf_put(char *buf, size_t cap, size_t len, const char *s)
{
	size_t n = strlen(s) + 1;

	if (len + n <= cap)
		memcpy(buf + len, s, n);
	return len + n;
}

static size_t tinybpf_object_index(const struct bpf_object *obj, char *buf, size_t cap)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	size_t len = 0;
	char count[24];
	unsigned long n = 0;

	bpf_object__for_each_program(prog, obj)
		n++;
	snprintf(count, sizeof(count), "%lu", n);
	len = tinybpf_put(buf, cap, len, bpf_object__name(obj));
	len = tinybpf_put(buf, cap, len, count);
	bpf_object__for_each_program(prog, obj)
		len = tinybpf_put(buf, cap, len, bpf_program__name(prog));
	bpf_object__for_each_map(map, obj)
		len = tinybpf_put(buf, cap, len, bpf_map__name(map));
	return len;
}

/* ---- open (and load) in one crossing -------------------------------------------------
 * Opens a BPF object from a file (data == NULL) or from memory, refuses BTF that would
 * crash or hang libbpf later (tinybpf_btf_check), loads it when `load` is set and writes
 * the object's name index into res->index (see tinybpf_object_index). Python would otherwise run
 * a handful of calls with its own bookkeeping in between, while libbpf's work has just
 * evicted the interpreter from the caches: open + load + close is measured against C.
 * On failure returns NULL with errno set, the object closed, and res->stage saying what
 * failed (TINYBPF_OPEN_FAILED, TINYBPF_BTF_INVALID with res->bad_id, TINYBPF_LOAD_FAILED). */

#include <sys/stat.h>

#define TINYBPF_INDEX_CAP 1024

struct tinybpf_open_result {
	int stage;
	__u32 bad_id;
	char *log; /* on failure, libbpf's messages (struct tinybpf_capture); tinybpf_free */
	size_t log_len;
	size_t index_len; /* more than TINYBPF_INDEX_CAP: index[] is incomplete */
	char index[TINYBPF_INDEX_CAP];
};

enum {
	TINYBPF_OPEN_FAILED = 1,
	TINYBPF_BTF_INVALID = 2,
	TINYBPF_LOAD_FAILED = 3,
	TINYBPF_NOT_REGULAR = 4,
};

static struct bpf_object *tinybpf_open_object_captured(const char *path, const void *data,
						       size_t size,
						       const struct bpf_object_open_opts *opts,
						       int load, struct tinybpf_open_result *res)
{
	struct bpf_object *obj;
	const struct btf *btf;
	struct stat st;
	int err;

	/* libbpf open()s the path and reads it whole: a FIFO blocks forever, a character
	 * device may never end, a directory fails deep in libelf. Only regular files (a
	 * failed stat is left to libbpf, which reports it). */
	if (!data && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		res->stage = TINYBPF_NOT_REGULAR;
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return NULL;
	}
	obj = data ? bpf_object__open_mem(data, size, opts) : bpf_object__open_file(path, opts);
	if (!obj) {
		res->stage = TINYBPF_OPEN_FAILED;
		return NULL; /* errno set by libbpf */
	}
	/* names and BTF first, while libbpf's parse of them is still in the caches */
	res->index_len = tinybpf_object_index(obj, res->index, sizeof(res->index));
	btf = bpf_object__btf(obj);
	if (btf) {
		/* all of it: a member type without alignment (a 0-byte INT) also makes
		 * libbpf's load divide by zero (SIGFPE; found by the object fuzzer) */
		err = tinybpf_btf_check(btf, &res->bad_id);
		if (err) {
			res->stage = TINYBPF_BTF_INVALID;
			goto fail;
		}
	}
	if (load) {
		err = bpf_object__load(obj);
		if (err) {
			res->stage = TINYBPF_LOAD_FAILED;
			goto fail;
		}
	}
	return obj;
fail:
	bpf_object__close(obj);
	errno = -err;
	return NULL;
}

static struct bpf_object *tinybpf_open_object(const char *path, const void *data, size_t size,
					      const struct bpf_object_open_opts *opts,
					      int load, struct tinybpf_open_result *res)
{
	struct tinybpf_capture log = { 0 }, *prev = tinybpf_capture_cur;
	struct bpf_object *obj;

	memset(res, 0, sizeof(*res));
	tinybpf_capture_cur = &log;
	obj = tinybpf_open_object_captured(path, data, size, opts, load, res);
	tinybpf_capture_cur = prev;
	if (!obj) {
		/* the messages go into the Python exception: the caller frees them */
		res->log = log.data;
		res->log_len = log.len;
	} else if (log.len) {
		/* success: the messages go where any other libbpf message goes, now, and
		 * Python has nothing to look at (errno is not part of a success) */
		size_t off = 0;

		while (off < log.len) {
			const char *msg = log.data + off;
			size_t n = strlen(msg);

			_tinybpf_log_sink(msg[0] - '0', msg + 1);
			off += n + 1;
		}
		free(log.data);
	}
	return obj;
}
