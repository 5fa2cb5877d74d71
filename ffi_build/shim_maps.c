/* tinybpf's C shim: map element operations on fds that a close can revoke.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

/* ---- map fds that a close can revoke while other threads use them -------------------
 * Every element operation borrows the fd here, inside the one C call that uses it: the
 * count of users goes up, then the fd is read; tinybpf_fd_revoke() sets the fd to -1,
 * then waits until no call holds it. Python closes (or lets libbpf close) the fd only
 * after the revoke, so a call can never reach another map that was given the same fd
 * number. A revoked handle answers TINYBPF_CLOSED. Nothing between the borrow and the
 * release runs Python, so a close from the same thread cannot wait on itself. */

#include <sched.h>

struct tinybpf_fd {
	int fd;
	int users;
};

#define TINYBPF_CLOSED (-0x7ead)

static int tinybpf_fd_get(struct tinybpf_fd *h)
{
	int fd;

	__atomic_add_fetch(&h->users, 1, __ATOMIC_SEQ_CST);
	fd = __atomic_load_n(&h->fd, __ATOMIC_SEQ_CST);
	if (fd < 0)
		__atomic_sub_fetch(&h->users, 1, __ATOMIC_SEQ_CST);
	return fd;
}

static void tinybpf_fd_put(struct tinybpf_fd *h)
{
	__atomic_sub_fetch(&h->users, 1, __ATOMIC_SEQ_CST);
}

static void tinybpf_fd_revoke(struct tinybpf_fd *h)
{
	__atomic_store_n(&h->fd, -1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&h->users, __ATOMIC_SEQ_CST))
		sched_yield();
}

#define TINYBPF_WITH_FD(h, fd, call)                                                   \
	do {                                                                           \
		int fd = tinybpf_fd_get(h);                                            \
		int ret_;                                                              \
		if (fd < 0)                                                            \
			return TINYBPF_CLOSED;                                         \
		ret_ = (call);                                                         \
		tinybpf_fd_put(h);                                                     \
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
