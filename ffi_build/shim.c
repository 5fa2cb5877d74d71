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

/* The n-th type a type contains by value (its size depends on it): members of structs
 * and unions, array elements, typedef and modifier targets. A cycle here is a type that
 * contains itself, on which btf__align_of() and btf__resolve_size() recurse forever. */
static int tinybpf_btf_value_edge(const struct btf_type *t, __u32 n, __u32 *ref)
{
	switch (btf_kind(t)) {
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		if (n >= btf_vlen(t))
			return 0;
		*ref = btf_members(t)[n].type;
		return 1;
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_TYPE_TAG:
		if (n)
			return 0;
		*ref = t->type;
		return 1;
	case BTF_KIND_ARRAY:
		if (n)
			return 0;
		*ref = btf_array(t)->type;
		return 1;
	default:
		return 0;
	}
}

typedef int (*tinybpf_edge_fn)(const struct btf_type *t, __u32 n, __u32 *ref);

static int tinybpf_btf_edge(const struct btf_type *t, __u32 n, __u32 *ref);

/* Scratch space of one BTF check, per type: its btf_type (looked up once), the DFS color
 * (0 unseen, 1 on the stack, 2 done), a DFS stack slot (type, next edge) and whether it
 * has an alignment. */
struct tinybpf_check {
	const struct btf_type **types;
	unsigned char *mark;
	__u32 *stack_id;
	__u32 *stack_edge;
	__u32 cnt;
	unsigned char *aligned; /* btf__align_of(id) > 0, filled by the value-edge search */
	__u32 *depth;		/* longest chain of references from a type, per search */
	__u32 *cost;		/* types btf__align_of() visits from a type (saturating) */
	__u64 total;		/* sum of cost over structs and unions */
};

/* Limits on BTF that libbpf walks recursively (btf_dump orders and emits types by
 * recursion, btf__align_of() recurses into every member without memoizing): a chain of
 * references deeper than TINYBPF_BTF_MAX_DEPTH types would overflow the C stack, and
 * more than TINYBPF_BTF_MAX_COST visits of btf__align_of() (a chain or a lattice of
 * structs containing each other by value) make a dump take minutes. The kernel's own
 * BTF stays far below both (docs/reliability.md has the figures). */
#define TINYBPF_BTF_MAX_DEPTH 1000
#define TINYBPF_BTF_MAX_COST 50000000ULL
/* btf_dump prints a struct's holes as one `long: 64;` line per 64 bits: a member at bit
 * offset 2^30 is 16 million lines. Each line counts as this many steps of the cost. */
#define TINYBPF_BTF_PAD_WEIGHT 16

/* Whether btf__align_of(id) would be > 0 (the same cases as libbpf 1.7's btf.c), from the
 * answers for the types it contains, which a post-order walk has computed before. A
 * struct or union needs every member aligned (libbpf stops early at a member it finds
 * packed; every member type is checked on its own below anyway). */
static unsigned char tinybpf_btf_aligned(const struct tinybpf_check *c, __u32 id)
{
	const struct btf_type *t = c->types[id];
	__u32 n, ref;

	switch (btf_kind(t)) {
	case BTF_KIND_INT:
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
	case BTF_KIND_FLOAT:
		return t->size > 0;
	case BTF_KIND_PTR:
		return 1;
	default:
		/* no alignment of its own and nothing it contains (FWD, FUNC, VAR, ...) */
		if (!btf_is_composite(t) && !tinybpf_btf_value_edge(t, 0, &ref))
			return 0;
		/* typedefs, modifiers, arrays, structs and unions: what they contain */
		for (n = 0; tinybpf_btf_value_edge(t, n, &ref); n++)
			if (!ref || !c->aligned[ref])
				return 0;
		return 1;
	}
}

enum { TINYBPF_WALK_REFS, TINYBPF_WALK_VALUES, TINYBPF_WALK_DUMP };

/* Whether a pointer to `id` ends a chain for btf_dump: a named struct, union, enum or
 * forward declaration (through typedefs and modifiers) is declared, not recursed into. */
static int tinybpf_btf_named_end(const struct tinybpf_check *c, __u32 id)
{
	__u32 steps;

	for (steps = 0; id && steps < c->cnt; steps++) {
		const struct btf_type *t = c->types[id];

		switch (btf_kind(t)) {
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPE_TAG:
			id = t->type;
			continue;
		case BTF_KIND_STRUCT:
		case BTF_KIND_UNION:
		case BTF_KIND_ENUM:
		case BTF_KIND_ENUM64:
		case BTF_KIND_FWD:
			return t->name_off != 0;
		default:
			return 0;
		}
	}
	return 0;
}

/* The n-th edge of the graph btf_dump recurses over: what a type contains by value,
 * what it refers to, except a pointer to a named struct, union or enum. */
static int tinybpf_btf_dump_edge(const struct tinybpf_check *c, const struct btf_type *t,
				 __u32 n, __u32 *ref)
{
	if (btf_is_composite(t))
		return tinybpf_btf_value_edge(t, n, ref);
	if (!tinybpf_btf_edge(t, n, ref))
		return 0;
	if (btf_kind(t) == BTF_KIND_PTR && tinybpf_btf_named_end(c, *ref))
		*ref = 0;
	return 1;
}

static int tinybpf_btf_next(const struct tinybpf_check *c, tinybpf_edge_fn edge, int walk,
			    const struct btf_type *t, __u32 n, __u32 *ref)
{
	return walk == TINYBPF_WALK_DUMP ? tinybpf_btf_dump_edge(c, t, n, ref) : edge(t, n, ref);
}

/* A type is finished (every type it reaches is, or is on the stack in a dump walk): its
 * depth, and in the value walk its btf__align_of() cost, checked against the limits. */
static int tinybpf_btf_measure(struct tinybpf_check *c, tinybpf_edge_fn edge, int walk,
			       __u32 id, __u32 *bad_id)
{
	const struct btf_type *t = c->types[id];
	__u32 n, ref, deepest = 0;
	__u64 cost = 1;

	for (n = 0; tinybpf_btf_next(c, edge, walk, t, n, &ref); n++) {
		if (!ref || c->mark[ref] != 2)
			continue; /* void, or a back edge of a dump walk (a struct's own pointer) */
		if (c->depth[ref] > deepest)
			deepest = c->depth[ref];
		if (walk == TINYBPF_WALK_VALUES)
			cost += c->cost[ref];
	}
	c->depth[id] = deepest + 1;
	if (c->depth[id] > TINYBPF_BTF_MAX_DEPTH) {
		*bad_id = id;
		return -E2BIG;
	}
	if (walk == TINYBPF_WALK_VALUES) {
		c->cost[id] = cost > 0xffffffffULL ? 0xffffffffU : (__u32)cost;
		if (btf_is_composite(t)) {
			/* btf__align_of()'s visits, and the padding lines of its holes */
			__u64 end = (__u64)t->size * 8;

			for (n = 0; n < btf_vlen(t); n++) {
				__u64 stop = (__u64)btf_member_bit_offset(t, n) +
					     btf_member_bitfield_size(t, n);

				if (stop > end)
					end = stop;
			}
			c->total += cost + end / 64 * TINYBPF_BTF_PAD_WEIGHT;
		}
		if (c->total > TINYBPF_BTF_MAX_COST) {
			*bad_id = id;
			return -EOVERFLOW;
		}
	}
	return 0;
}

/* Depth-first search for a cycle over the edges that `edge` gives (a dump walk allows
 * them: it only measures); in the value walk, the alignment of each type as it is
 * finished (its contained types are finished first). */
static int tinybpf_btf_find_cycle(struct tinybpf_check *c, tinybpf_edge_fn edge, int walk,
				  __u32 *bad_id)
{
	unsigned char *color = c->mark;
	__u32 *stack_id = c->stack_id, *stack_edge = c->stack_edge, id, ref;
	int align = walk == TINYBPF_WALK_VALUES, err;

	memset(color, 0, c->cnt);
	for (id = 1; id < c->cnt; id++) {
		__u32 depth;

		if (color[id])
			continue;
		color[id] = 1;
		stack_id[0] = id;
		stack_edge[0] = 0;
		depth = 1;
		while (depth) {
			__u32 top = stack_id[depth - 1];

			if (!tinybpf_btf_next(c, edge, walk, c->types[top], stack_edge[depth - 1]++,
					      &ref)) {
				color[top] = 2;
				if (align)
					c->aligned[top] = tinybpf_btf_aligned(c, top);
				err = tinybpf_btf_measure(c, edge, walk, top, bad_id);
				if (err)
					return err;
				depth--;
				continue;
			}
			if (ref == 0 || color[ref] == 2)
				continue;
			if (color[ref] == 1 && walk == TINYBPF_WALK_DUMP)
				continue;
			if (color[ref] == 1) {
				*bad_id = ref;
				return -ELOOP;
			}
			color[ref] = 1;
			stack_id[depth] = ref;
			stack_edge[depth] = 0;
			depth++;
		}
	}
	return 0;
}

static int tinybpf_btf_check(const struct btf *btf, __u32 *bad_id);

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
	__u32 id, cnt, bad;
	int err = 0;

	err = tinybpf_btf_check(btf, &bad);
	if (err)
		return err;
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

/* ---- link info: the kernel's union flattened into what Python shows ---------------- */

struct tinybpf_link_info {
	__u32 type;
	__u32 id;
	__u32 prog_id;
	__u32 attach_type;
	__u32 ifindex;
	__u32 netns_ino;
	__u64 cgroup_id;
	__u32 pf;
	__u32 hooknum;
	__s32 priority;
	__u32 map_id;
	char target_name[256];
};

static int tinybpf_link_info(int link_fd, struct tinybpf_link_info *out)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	char name[256];
	int err;

	memset(&info, 0, sizeof(info));
	memset(out, 0, sizeof(*out));
	name[0] = '\0';
	/* the kernel fills the name for these link types when given a buffer */
	err = bpf_link_get_info_by_fd(link_fd, &info, &len);
	if (err)
		return err;
	if (info.type == BPF_LINK_TYPE_RAW_TRACEPOINT) {
		memset(&info, 0, sizeof(info));
		info.raw_tracepoint.tp_name = (__u64)(unsigned long)name;
		info.raw_tracepoint.tp_name_len = sizeof(name);
		len = sizeof(info);
		err = bpf_link_get_info_by_fd(link_fd, &info, &len);
		if (err)
			return err;
	}
	out->type = info.type;
	out->id = info.id;
	out->prog_id = info.prog_id;
	switch (info.type) {
	case BPF_LINK_TYPE_RAW_TRACEPOINT:
		snprintf(out->target_name, sizeof(out->target_name), "%s", name);
		break;
	case BPF_LINK_TYPE_TRACING:
		out->attach_type = info.tracing.attach_type;
		break;
	case BPF_LINK_TYPE_CGROUP:
		out->cgroup_id = info.cgroup.cgroup_id;
		out->attach_type = info.cgroup.attach_type;
		break;
	case BPF_LINK_TYPE_NETNS:
		out->netns_ino = info.netns.netns_ino;
		out->attach_type = info.netns.attach_type;
		break;
	case BPF_LINK_TYPE_XDP:
		out->ifindex = info.xdp.ifindex;
		break;
	case BPF_LINK_TYPE_STRUCT_OPS:
		out->map_id = info.struct_ops.map_id;
		break;
	case BPF_LINK_TYPE_NETFILTER:
		out->pf = info.netfilter.pf;
		out->hooknum = info.netfilter.hooknum;
		out->priority = info.netfilter.priority;
		break;
	case BPF_LINK_TYPE_TCX:
		out->ifindex = info.tcx.ifindex;
		out->attach_type = info.tcx.attach_type;
		break;
	case BPF_LINK_TYPE_NETKIT:
		out->ifindex = info.netkit.ifindex;
		out->attach_type = info.netkit.attach_type;
		break;
	case BPF_LINK_TYPE_SOCKMAP:
		out->map_id = info.sockmap.map_id;
		out->attach_type = info.sockmap.attach_type;
		break;
	case BPF_LINK_TYPE_ITER:
		out->map_id = info.iter.map.map_id;
		break;
	default:
		break;
	}
	return 0;
}

/* ---- iterators: union bpf_iter_link_info built here ------------------------------- */

static struct bpf_link *tinybpf_attach_iter(const struct bpf_program *prog, int map_fd,
					    int cgroup_fd, int cgroup_order, __u32 tid,
					    __u32 pid, __u32 pid_fd)
{
	union bpf_iter_link_info linfo;
	LIBBPF_OPTS(bpf_iter_attach_opts, opts);

	memset(&linfo, 0, sizeof(linfo));
	if (map_fd >= 0) {
		linfo.map.map_fd = (__u32)map_fd;
	} else if (cgroup_fd >= 0) {
		linfo.cgroup.cgroup_fd = (__u32)cgroup_fd;
		linfo.cgroup.order = (enum bpf_cgroup_iter_order)cgroup_order;
	} else if (tid || pid || pid_fd) {
		linfo.task.tid = tid;
		linfo.task.pid = pid;
		linfo.task.pid_fd = pid_fd;
	} else {
		return bpf_program__attach_iter(prog, NULL);
	}
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	return bpf_program__attach_iter(prog, &opts);
}

/* ---- auto-attach of one program, with the skeleton's rules ---------------------------
 * bpf_program__attach() answers -EOPNOTSUPP both for a section that names no target (xdp,
 * tc, SEC("uprobe") without a binary) and for a real failure. The skeleton attach tells
 * them apart (no attach function, or one that leaves the link NULL: skipped), so one
 * program is attached through a one-program skeleton. Returns 1 with *link set (attached),
 * 0 (the section does not say where: skipped, or autoload/autoattach is off) or -errno. */

static int tinybpf_auto_attach(struct bpf_program *prog, struct bpf_link **link)
{
	struct bpf_program *progs[1] = { prog };
	struct bpf_prog_skeleton ps;
	struct bpf_object_skeleton s;
	int err;

	memset(&ps, 0, sizeof(ps));
	memset(&s, 0, sizeof(s));
	*link = NULL;
	ps.name = bpf_program__name(prog);
	ps.prog = &progs[0];
	ps.link = link;
	s.sz = sizeof(s);
	s.name = ps.name;
	s.prog_cnt = 1;
	s.prog_skel_sz = sizeof(ps);
	s.progs = &ps;
	s.map_skel_sz = sizeof(struct bpf_map_skeleton);
	err = bpf_object__attach_skeleton(&s);
	if (err)
		return err < 0 ? err : -err;
	return *link ? 1 : 0;
}

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

/* ---- setns(2) for the calling thread (os.setns needs Python 3.12) -------------------- */

#include <sched.h>

static int tinybpf_setns(int fd, int nstype)
{
	return setns(fd, nstype) ? -errno : 0;
}

/* ---- BTF sanity checks that libbpf leaves to its callers ---------------------------
 *
 * btf__parse() accepts BTF that later crashes btf_dump (a FUNC_PROTO return type out of
 * range, a member type without alignment: division by zero, reference cycles not broken
 * by a struct: unbounded recursion), and CO-RE relocation loops forever on a typedef
 * cycle. tinybpf checks before handing BTF to either. Returns 0, or -EINVAL with *bad_id
 * set to the offending type. */

/* The n-th type a non-struct type refers to (struct and union members end chains: a
 * struct may legally contain a pointer to itself). Returns 0 when there is no n-th. */
static int tinybpf_btf_edge(const struct btf_type *t, __u32 n, __u32 *ref)
{
	switch (btf_kind(t)) {
	case BTF_KIND_PTR:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_TYPE_TAG:
	case BTF_KIND_FUNC:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		if (n)
			return 0;
		*ref = t->type;
		return 1;
	case BTF_KIND_ARRAY:
		if (n)
			return 0;
		*ref = btf_array(t)->type;
		return 1;
	case BTF_KIND_FUNC_PROTO:
		if (n == 0) {
			*ref = t->type;
			return 1;
		}
		if (n > btf_vlen(t))
			return 0;
		*ref = btf_params(t)[n - 1].type;
		return 1;
	default:
		return 0;
	}
}

static int tinybpf_btf_check_with(const struct btf *btf, struct tinybpf_check *c,
				  __u32 *bad_id)
{
	__u32 cnt = c->cnt, id, ref, i, n;
	int err;

	*bad_id = 0;
	c->types[0] = NULL;
	for (id = 1; id < cnt; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);

		if (!t) {
			*bad_id = id;
			return -EINVAL;
		}
		c->types[id] = t;
		for (n = 0; tinybpf_btf_edge(t, n, &ref); n++) {
			if (ref >= cnt) {
				*bad_id = id;
				return -EINVAL;
			}
		}
		if (btf_kind(t) == BTF_KIND_ARRAY && btf_array(t)->index_type >= cnt) {
			*bad_id = id;
			return -EINVAL;
		}
		if (btf_is_composite(t)) {
			const struct btf_member *m = btf_members(t);

			for (i = 0; i < btf_vlen(t); i++, m++) {
				if (m->type >= cnt || m->type == 0) {
					*bad_id = id;
					return -EINVAL;
				}
			}
		}
	}
	/* cycles (before anything follows references, such as btf__align_of below): through
	 * pointers and typedefs without a struct in between, and types containing themselves */
	err = tinybpf_btf_find_cycle(c, tinybpf_btf_edge, TINYBPF_WALK_REFS, bad_id);
	if (!err)
		err = tinybpf_btf_find_cycle(c, tinybpf_btf_value_edge, TINYBPF_WALK_VALUES, bad_id);
	/* depth of what btf_dump recurses over: values and references together (struct
	 * pointers to themselves are back edges there) */
	if (!err)
		err = tinybpf_btf_find_cycle(c, tinybpf_btf_edge, TINYBPF_WALK_DUMP, bad_id);
	if (err)
		return err;
	/* btf_dump and libbpf's load divide by member alignments: every member type must
	 * have one (computed above without btf__align_of's recursion) */
	for (id = 1; id < cnt; id++) {
		const struct btf_type *t = c->types[id];
		const struct btf_member *m;

		if (!btf_is_composite(t))
			continue;
		m = btf_members(t);
		for (i = 0; i < btf_vlen(t); i++, m++) {
			if (!c->aligned[m->type]) {
				*bad_id = id;
				return -EDOM;
			}
		}
	}
	return 0;
}

/* Scratch space on the stack for the small BTF of a typical object (open is on the
 * benchmarked open + load + close path), malloc'ed for bigger ones. */
static int tinybpf_btf_check(const struct btf *btf, __u32 *bad_id)
{
	enum { SMALL = 512 };
	const struct btf_type *small_types[SMALL];
	__u32 small_ids[4 * SMALL];
	unsigned char small_mark[2 * SMALL];
	struct tinybpf_check c = { small_types,		 small_mark, small_ids,
				   small_ids + SMALL,	 btf__type_cnt(btf), small_mark + SMALL,
				   small_ids + 2 * SMALL, small_ids + 3 * SMALL, 0 };
	void *heap = NULL;
	int err;

	if (c.cnt > SMALL) {
		size_t per = sizeof(*c.types) + 4 * sizeof(__u32) + 2;

		heap = malloc((size_t)c.cnt * per);
		if (!heap)
			return -ENOMEM;
		c.types = heap;
		c.stack_id = (__u32 *)(c.types + c.cnt);
		c.stack_edge = c.stack_id + c.cnt;
		c.depth = c.stack_edge + c.cnt;
		c.cost = c.depth + c.cnt;
		c.mark = (unsigned char *)(c.cost + c.cnt);
		c.aligned = c.mark + c.cnt;
	}
	err = tinybpf_btf_check_with(btf, &c, bad_id);
	free(heap);
	return err;
}

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

/* The full pinned version (libbpf's headers only carry major.minor). */
static const char *tinybpf_libbpf_release(void)
{
	return TINYBPF_PIN_VERSION;
}

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

