/* tinybpf's C shim: the parts of the binding that cffi cannot express.
 *
 * Included into the generated extension by ffi_build/build_ffi.py, after cffi's own
 * declarations of the extern "Python" sinks. Everything here is static: the extension
 * exports nothing but its PyInit_ symbol.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <bpf/btf.h>

#if !defined(TINYBPF_PIN_MAJOR) || !defined(TINYBPF_PIN_MINOR)
#error "build_ffi.py must define the pinned libbpf version"
#endif
#if LIBBPF_MAJOR_VERSION != TINYBPF_PIN_MAJOR || LIBBPF_MINOR_VERSION != TINYBPF_PIN_MINOR
#error "libbpf headers do not match the version pinned in .libbpf-version"
#endif

/* ---- libbpf's print callback -> one Python sink ------------------------------------ */

static int tinybpf_print_level = LIBBPF_INFO;

static int tinybpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char stackbuf[512];
	char *buf = stackbuf;
	va_list ap2;
	int n;

	if ((int)level > tinybpf_print_level)
		return 0;
	va_copy(ap2, ap);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
	if (n >= (int)sizeof(stackbuf)) {
		buf = malloc((size_t)n + 1);
		if (buf)
			vsnprintf(buf, (size_t)n + 1, fmt, ap2);
		else
			buf = stackbuf; /* truncated rather than lost */
	}
	va_end(ap2);
	if (n >= 0)
		_tinybpf_log_sink((int)level, buf);
	if (buf != stackbuf)
		free(buf);
	return 0;
}

static void tinybpf_set_print_level(int level)
{
	tinybpf_print_level = level;
	libbpf_set_print(tinybpf_print);
}

/* ---- BTF as C: btf_dump's printf callback takes a va_list ------------------------- */

struct tinybpf_strbuf {
	char *data;
	size_t len;
	size_t cap;
	int err;
};

static void tinybpf_strbuf_printf(void *ctx, const char *fmt, va_list ap)
{
	struct tinybpf_strbuf *sb = ctx;
	va_list ap2;
	int n;

	if (sb->err)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
	if (n < 0) {
		sb->err = -EINVAL;
	} else if ((size_t)n >= sb->cap - sb->len) {
		size_t cap = sb->cap;
		char *p;

		while (cap - sb->len <= (size_t)n)
			cap *= 2;
		p = realloc(sb->data, cap);
		if (!p) {
			sb->err = -ENOMEM;
		} else {
			sb->data = p;
			sb->cap = cap;
			vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
			sb->len += (size_t)n;
		}
	} else {
		sb->len += (size_t)n;
	}
	va_end(ap2);
}

/* Dump every type of btf as C declarations into a malloc'ed, NUL-terminated string. */
static int tinybpf_btf_dump_c(const struct btf *btf, char **out, size_t *len)
{
	struct tinybpf_strbuf sb = { 0 };
	struct btf_dump *d;
	__u32 id, cnt;
	int err = 0;

	sb.cap = 1 << 16;
	sb.data = malloc(sb.cap);
	if (!sb.data)
		return -ENOMEM;
	sb.data[0] = '\0';
	d = btf_dump__new(btf, tinybpf_strbuf_printf, &sb, NULL);
	if (!d) {
		err = -errno;
		free(sb.data);
		return err ? err : -EINVAL;
	}
	cnt = btf__type_cnt(btf);
	for (id = 1; id < cnt && !err && !sb.err; id++)
		err = btf_dump__dump_type(d, id);
	btf_dump__free(d);
	if (!err)
		err = sb.err;
	if (err) {
		free(sb.data);
		return err;
	}
	*out = sb.data;
	*len = sb.len;
	return 0;
}

static void tinybpf_free(void *p)
{
	free(p);
}
