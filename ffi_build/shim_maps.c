/* tinybpf's C shim: map element operations on fds that a close can revoke.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

/* ---- forks: a forked child is told by a count, not by getpid() ----------------------
 * tinybpf_forks goes up in every child fork() makes (pthread_atfork, registered when the
 * extension is loaded). A count of calls in flight, or a read-ahead thread, that belongs to
 * the parent is recognised in the child by an older count: the thread that would finish
 * the call does not exist there. getpid() would tell too, but it is a syscall that the
 * programs tracing this process would see. */

#include <pthread.h>
#include <sched.h>

static unsigned tinybpf_forks;
static int tinybpf_forks_watched;

static void tinybpf_forks_count(void)
{
	__atomic_add_fetch(&tinybpf_forks, 1, __ATOMIC_SEQ_CST);
}

__attribute__((constructor)) static void tinybpf_forks_watch(void)
{
	tinybpf_forks_watched = pthread_atfork(NULL, NULL, tinybpf_forks_count) == 0;
}

static unsigned tinybpf_forks_now(void)
{
	return __atomic_load_n(&tinybpf_forks, __ATOMIC_SEQ_CST);
}

/* ---- map fds that a close can revoke while other threads use them -------------------
 * Every element operation borrows the fd here, inside the one C call that uses it: the
 * count of users goes up, then the fd is read; tinybpf_fd_revoke() sets the fd to -1,
 * then waits until no call holds it. Python closes (or lets libbpf close) the fd only
 * after the revoke, so a call can never reach another map that was given the same fd
 * number. A revoked handle answers TINYBPF_CLOSED. Nothing between the borrow and the
 * release runs Python, so a close from the same thread cannot wait on itself.
 *
 * The count carries the fork count it was made in (high 32 bits): in a child forked while
 * another thread of the parent was inside a call, that call never ends, and its count is
 * not waited for (else the child's close() would wait forever); the child's own calls
 * start a new count. */

struct tinybpf_fd {
	int fd;
	__u64 users; /* tinybpf_forks << 32 | calls holding the fd */
};

#define TINYBPF_CLOSED (-0x7ead)

static int tinybpf_fd_get(struct tinybpf_fd *h, unsigned *forks)
{
	unsigned now = tinybpf_forks_now();
	__u64 old = __atomic_load_n(&h->users, __ATOMIC_SEQ_CST), new;
	int fd;

	do
		new = old >> 32 == now ? old + 1 : (__u64)now << 32 | 1;
	while (!__atomic_compare_exchange_n(&h->users, &old, new, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST));
	*forks = now;
	fd = __atomic_load_n(&h->fd, __ATOMIC_SEQ_CST);
	if (fd < 0)
		__atomic_sub_fetch(&h->users, 1, __ATOMIC_SEQ_CST);
	return fd;
}

static void tinybpf_fd_put(struct tinybpf_fd *h, unsigned forks)
{
	__u64 old = __atomic_load_n(&h->users, __ATOMIC_SEQ_CST);

	do
		if (old >> 32 != forks)
			return; /* (cannot happen: only a child starts a new count) */
	while (!__atomic_compare_exchange_n(&h->users, &old, old - 1, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST));
}

static void tinybpf_fd_revoke(struct tinybpf_fd *h)
{
	__u64 users;

	__atomic_store_n(&h->fd, -1, __ATOMIC_SEQ_CST);
	for (;;) {
		users = __atomic_load_n(&h->users, __ATOMIC_SEQ_CST);
		if (users >> 32 != tinybpf_forks_now() || (__u32)users == 0)
			break;
		sched_yield();
	}
}

#define TINYBPF_WITH_FD(h, fd, call)                                                   \
	do {                                                                           \
		unsigned forks_;                                                       \
		int fd = tinybpf_fd_get(h, &forks_);                                   \
		int ret_;                                                              \
		if (fd < 0)                                                            \
			return TINYBPF_CLOSED;                                         \
		ret_ = (call);                                                         \
		tinybpf_fd_put(h, forks_);                                             \
		return ret_;                                                           \
	} while (0)

static int tinybpf_map_lookup(struct tinybpf_fd *h, const void *key, void *value, __u64 flags)
{
	TINYBPF_WITH_FD(h, fd,
			flags ? bpf_map_lookup_elem_flags(fd, key, value, flags)
			      : bpf_map_lookup_elem(fd, key, value));
}

static int tinybpf_map_update(struct tinybpf_fd *h, const void *key, const void *value,
			      __u64 flags)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_update_elem(fd, key, value, flags));
}

static int tinybpf_map_delete(struct tinybpf_fd *h, const void *key)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_delete_elem(fd, key));
}

static int tinybpf_map_lookup_and_delete(struct tinybpf_fd *h, const void *key, void *value)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_lookup_and_delete_elem(fd, key, value));
}

static int tinybpf_map_get_next_key(struct tinybpf_fd *h, const void *key, void *next)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_get_next_key(fd, key, next));
}

static int tinybpf_map_lookup_batch(struct tinybpf_fd *h, int delete, void *in_batch,
				    void *out_batch, void *keys, void *values, __u32 *count)
{
	TINYBPF_WITH_FD(h, fd,
			delete ? bpf_map_lookup_and_delete_batch(fd, in_batch, out_batch, keys,
								 values, count, NULL)
			       : bpf_map_lookup_batch(fd, in_batch, out_batch, keys, values, count,
						      NULL));
}

static int tinybpf_map_update_batch(struct tinybpf_fd *h, const void *keys, const void *values,
				    __u32 *count, const struct bpf_map_batch_opts *opts)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_update_batch(fd, keys, values, count, opts));
}

static int tinybpf_map_delete_batch(struct tinybpf_fd *h, const void *keys, __u32 *count)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_delete_batch(fd, keys, count, NULL));
}

static int tinybpf_map_freeze(struct tinybpf_fd *h)
{
	TINYBPF_WITH_FD(h, fd, bpf_map_freeze(fd));
}

/* ---- scalar map access: the key passed as an integer --------------------------------
 * Saves Python the key buffer on its hot path. A key that does not fit key_size returns
 * -ERANGE (Python then takes its general path, which explains the error). */

static int tinybpf_scalar_key(__s64 key, int key_size, int is_signed, void *out)
{
	if (!is_signed && key < 0)
		return -ERANGE;
	if (key_size < 8) {
		__s64 limit = (__s64)1 << (8 * key_size);

		if (is_signed ? (key < -limit / 2 || key >= limit / 2) : key >= limit)
			return -ERANGE;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(out, &key, (size_t)key_size);
#else
	memcpy(out, (char *)&key + (8 - key_size), (size_t)key_size);
#endif
	return 0;
}

static int tinybpf_lookup_scalar(struct tinybpf_fd *h, __s64 key, int key_size, int is_signed,
				 void *value)
{
	char kbuf[8];
	int err = tinybpf_scalar_key(key, key_size, is_signed, kbuf);

	return err ? err : tinybpf_map_lookup(h, kbuf, value, 0);
}

static int tinybpf_update_scalar(struct tinybpf_fd *h, __s64 key, int key_size, int is_signed,
				 const void *value, __u64 flags)
{
	char kbuf[8];
	int err = tinybpf_scalar_key(key, key_size, is_signed, kbuf);

	return err ? err : tinybpf_map_update(h, kbuf, value, flags);
}

/* m[k] = v for a map of integer keys and integer values, with the sizes and signs in one
 * integer so that Python passes few arguments: bits 0-3 the key size, bit 4 key signed,
 * bits 8-11 the value size, bit 12 value signed.
 * -ERANGE: a key or value that does not fit (Python's general path raises the error). */
static int tinybpf_update_ints(struct tinybpf_fd *h, __s64 spec, __s64 key, __s64 value)
{
	char kbuf[8], vbuf[8];
	int err = tinybpf_scalar_key(key, (int)(spec & 0xf), (int)((spec >> 4) & 1), kbuf);

	if (!err)
		err = tinybpf_scalar_key(value, (int)((spec >> 8) & 0xf), (int)((spec >> 12) & 1),
					 vbuf);
	return err ? err : tinybpf_map_update(h, kbuf, vbuf, BPF_ANY);
}

/* v = m[k] for the same maps, the value returned as an integer (sign- or zero-extended
 * from its size). TINYBPF_LOOKUP_AGAIN means "not a plain value": a missing key, a key
 * that does not fit, a closed map, another error, or a value that really is this number.
 * Python then asks its general path, which reports the outcome from its own return code
 * (no per-thread status to read afterwards, which a signal handler's lookup in between
 * could overwrite). */
#define TINYBPF_LOOKUP_AGAIN 0x7ead5e1ec7ed0001LL

static int tinybpf_lookup_raw(struct tinybpf_fd *h, __s64 spec, __s64 key, __u64 *value)
{
	char kbuf[8];
	__u64 v = 0;
	int vsize = (int)((spec >> 8) & 0xf);
	int err = tinybpf_scalar_key(key, (int)(spec & 0xf), (int)((spec >> 4) & 1), kbuf);

	if (!err)
		err = tinybpf_map_lookup(h, kbuf, &v, 0);
	if (err)
		return 1;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v >>= 8 * (8 - vsize);
#endif
	if (vsize < 8)
		v &= ((__u64)1 << (8 * vsize)) - 1;
	*value = v;
	return 0;
}

static __s64 tinybpf_lookup_ints_s(struct tinybpf_fd *h, __s64 spec, __s64 key)
{
	int vsize = (int)((spec >> 8) & 0xf);
	__u64 v;
	__s64 r;

	if (tinybpf_lookup_raw(h, spec, key, &v))
		return TINYBPF_LOOKUP_AGAIN;
	r = vsize < 8 && (v >> (8 * vsize - 1)) ? (__s64)(v | ~(((__u64)1 << (8 * vsize)) - 1))
						 : (__s64)v;
	return r;
}

static __u64 tinybpf_lookup_ints_u(struct tinybpf_fd *h, __s64 spec, __s64 key)
{
	__u64 v;

	if (tinybpf_lookup_raw(h, spec, key, &v))
		return TINYBPF_LOOKUP_AGAIN;
	return v;
}

/* ---- read-ahead of batch lookups ----------------------------------------------------
 * items(), keys(), values() and to_numpy() of a map larger than one batch: after Python's
 * first BPF_MAP_LOOKUP_BATCH, a thread makes the next calls while Python decodes the
 * batch it has (the kernel's walk and Python's decoding then overlap on two CPUs).
 *
 * Three slots (buffers for one batch each): the thread fills the free ones and then waits;
 * Python takes the oldest filled slot and holds it until its next call, so the thread never
 * writes into buffers being decoded, and is at most two batches ahead of the one Python
 * decodes. The thread borrows the fd through the map's handle for each call, like any
 * element operation: a close() revokes it and the next slot says TINYBPF_CLOSED. Python's
 * end of the iteration frees the reader, which stops and joins the thread (at most one
 * syscall away). Only lookups are read ahead: a lookup-and-delete read ahead of a caller
 * who stops would lose entries.
 *
 * After fork() the child has the reader but not its thread (and perhaps a mutex the
 * parent's thread held): told by the fork count, next() there answers
 * TINYBPF_READER_FORKED and free() only releases memory. The thread blocks the signals
 * sent to the process, so they go to Python's threads; not the ones a fault raises in the
 * thread itself (SIGSEGV, SIGBUS...), which must still reach their handlers. */

#include <signal.h>

#define TINYBPF_READ_SLOTS 3
#define TINYBPF_READER_FORKED (-0x7eae)

struct tinybpf_read_slot {
	char *keys;
	char *values;
	__u32 cap;   /* entries the buffers hold */
	__u32 count; /* entries read */
	int ret;     /* 0: more follow; -ENOENT: the last (also for a 0 return with no entries);
		      * other: the error, nothing read */
};

struct tinybpf_batch_reader {
	struct tinybpf_fd *h;
	__u32 key_size, value_size, chunk, max_chunk, token_size;
	char *token_in, *token_out;
	unsigned forks; /* tinybpf_forks when made */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned filled;   /* slots the thread has filled (slot = filled % TINYBPF_READ_SLOTS) */
	unsigned released; /* slots Python has taken and given back */
	int held;          /* Python holds slot `released` until its next call */
	int stop;          /* free(): the thread returns */
	int ended;         /* the thread filled its last slot */
	struct tinybpf_read_slot slots[TINYBPF_READ_SLOTS];
};

static int tinybpf_read_slot_fit(struct tinybpf_batch_reader *r, struct tinybpf_read_slot *s)
{
	char *k, *v;

	if (s->cap >= r->chunk)
		return 0;
	k = realloc(s->keys, (size_t)r->chunk * r->key_size);
	if (k)
		s->keys = k;
	v = k ? realloc(s->values, (size_t)r->chunk * r->value_size) : NULL;
	if (v)
		s->values = v;
	if (!k || !v)
		return -ENOMEM;
	s->cap = r->chunk;
	return 0;
}

static void tinybpf_read_fill(struct tinybpf_batch_reader *r, struct tinybpf_read_slot *s)
{
	__u32 count = 0;
	int ret;

	for (;;) {
		ret = tinybpf_read_slot_fit(r, s);
		if (ret)
			break;
		count = r->chunk;
		ret = tinybpf_map_lookup_batch(r->h, 0, r->token_in, r->token_out, s->keys,
					       s->values, &count);
		/* a bucket larger than the batch: grow it, as Python's own loop does */
		if (ret == -ENOSPC && r->chunk < r->max_chunk) {
			r->chunk = r->chunk > r->max_chunk / 4 ? r->max_chunk : r->chunk * 4;
			continue;
		}
		break;
	}
	if (ret == 0 && count == 0)
		ret = -ENOENT; /* nothing more: never loop on empty batches */
	s->count = ret == 0 || ret == -ENOENT ? count : 0;
	s->ret = ret;
	if (ret == 0)
		memcpy(r->token_in, r->token_out, r->token_size);
}

static void *tinybpf_read_thread(void *arg)
{
	struct tinybpf_batch_reader *r = arg;
	struct tinybpf_read_slot *s;
	int last = 0;

	while (!last) {
		pthread_mutex_lock(&r->lock);
		while (!r->stop && r->filled - r->released >= TINYBPF_READ_SLOTS)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		s = &r->slots[r->filled % TINYBPF_READ_SLOTS];
		pthread_mutex_unlock(&r->lock);

		tinybpf_read_fill(r, s);
		last = s->ret != 0;

		pthread_mutex_lock(&r->lock);
		r->filled++;
		r->ended = last;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

static void tinybpf_batch_reader_release(struct tinybpf_batch_reader *r)
{
	for (int i = 0; i < TINYBPF_READ_SLOTS; i++) {
		free(r->slots[i].keys);
		free(r->slots[i].values);
	}
	free(r->token_in);
	free(r->token_out);
	free(r);
}

/* A reader that continues from `token` (the out_batch of Python's last call), or NULL
 * with errno set: Python then goes on reading on its own thread. */
static struct tinybpf_batch_reader *tinybpf_batch_reader_new(struct tinybpf_fd *h,
							      __u32 key_size, __u32 value_size,
							      __u32 chunk, __u32 max_chunk,
							      const void *token, __u32 token_size)
{
	static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
	struct tinybpf_batch_reader *r;
	sigset_t mask, old;
	int err;

	if (!tinybpf_forks_watched) { /* a child could not tell it has no thread */
		errno = ENOSYS;
		return NULL;
	}
	if (!key_size || !value_size || !chunk || !token_size) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->h = h;
	r->key_size = key_size;
	r->value_size = value_size;
	r->chunk = chunk;
	r->max_chunk = max_chunk > chunk ? max_chunk : chunk;
	r->token_size = token_size;
	r->token_in = malloc(token_size);
	r->token_out = malloc(token_size);
	r->forks = tinybpf_forks_now();
	if (!r->token_in || !r->token_out) {
		tinybpf_batch_reader_release(r);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(r->token_in, token, token_size);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	sigfillset(&mask);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&mask, faults[i]);
	pthread_sigmask(SIG_SETMASK, &mask, &old); /* the new thread inherits this mask */
	err = pthread_create(&r->thread, NULL, tinybpf_read_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		tinybpf_batch_reader_release(r);
		errno = err;
		return NULL;
	}
	return r;
}

/* The next batch: its buffers (valid until the next call or free) and count; returns what
 * BPF_MAP_LOOKUP_BATCH returned for it (0, -ENOENT for the last, or the error). After the
 * last: -ENOENT with no entries; in a forked child: TINYBPF_READER_FORKED. With no entries
 * the buffers are NULL. */
static int tinybpf_batch_reader_next(struct tinybpf_batch_reader *r, char **keys, char **values,
				     __u32 *count)
{
	struct tinybpf_read_slot *s;

	*keys = NULL;
	*values = NULL;
	*count = 0;
	if (r->forks != tinybpf_forks_now())
		return TINYBPF_READER_FORKED;
	pthread_mutex_lock(&r->lock);
	if (r->held) {
		r->released++;
		r->held = 0;
		pthread_cond_broadcast(&r->cond);
	}
	while (r->filled == r->released && !r->ended)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->filled == r->released) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	s = &r->slots[r->released % TINYBPF_READ_SLOTS];
	r->held = 1;
	pthread_mutex_unlock(&r->lock);
	if (s->count) {
		*keys = s->keys;
		*values = s->values;
		*count = s->count;
	}
	return s->ret;
}

static void tinybpf_batch_reader_free(struct tinybpf_batch_reader *r)
{
	if (!r)
		return;
	if (r->forks == tinybpf_forks_now()) {
		pthread_mutex_lock(&r->lock);
		r->stop = 1;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
	}
	tinybpf_batch_reader_release(r);
}
