/* tinybpf's C shim: BTF checks libbpf leaves to its callers, and BTF dumped as C.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

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
