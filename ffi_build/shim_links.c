/* tinybpf's C shim: link info, iterator attach and auto-attach.
 *
 * One of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension as
 * one unit (in the order of its SHIM_FILES). Everything is static.
 */

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
