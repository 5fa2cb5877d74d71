/* tinybpf's C shim: libbpf's print callback (a va_list) -> one Python sink, and the C-side
 * capture of a thread's messages.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

/* ---- libbpf's print callback -> one Python sink ------------------------------------ */

static int tinybpf_print_level = LIBBPF_INFO;

/* A capture of this thread's libbpf messages kept in C, for calls on a hot path (open +
 * load) that should not cross into Python per message: each message is stored as one
 * level byte ('0' + level), the text and a NUL. */
struct tinybpf_capture {
	char *data;
	size_t len;
	size_t cap;
};

static __thread struct tinybpf_capture *tinybpf_capture_cur;

static void tinybpf_capture_add(struct tinybpf_capture *c, int level, const char *msg)
{
	size_t n = strlen(msg) + 2;
	char *p;

	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 1024;

		while (cap < c->len + n)
			cap *= 2;
		p = realloc(c->data, cap);
		if (!p)
			return; /* dropped rather than fail the call */
		c->data = p;
		c->cap = cap;
	}
	c->data[c->len] = (char)('0' + level);
	memcpy(c->data + c->len + 1, msg, n - 1);
	c->len += n;
}

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
	if (n >= 0 && tinybpf_capture_cur)
		tinybpf_capture_add(tinybpf_capture_cur, (int)level, buf);
	else if (n >= 0)
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
