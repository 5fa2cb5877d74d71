"""BpfProgram: one program of a BPF object, and the ways to attach it."""

from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tinybpf._ffi import NULL, capture_log, check_int, check_ptr, cstr, ffi, lib, new_opts, pystr
from tinybpf._guard import guarded
from tinybpf._kernel import lsm_inactive_message
from tinybpf._pin import check_pin_path
from tinybpf._types import BpfAttachType, BpfProgType, ProgramInfo
from tinybpf.errors import BpfClosedError, BpfError, BpfNotSupportedError, BpfPhaseError
from tinybpf.link import BpfLink, IterLink, SocketFilter, TcAttachment, XdpAttachment

if TYPE_CHECKING:
    import socket

    from tinybpf.introspect import KernelProgramInfo
    from tinybpf.object import BpfObject

__all__ = [
    "BpfProgram",
    "IterLink",
    "SocketFilter",
    "TcAttachment",
    "TestRunResult",
    "XdpAttachment",
]

_SO_ATTACH_BPF: int = lib.SO_ATTACH_BPF  # not exported by the socket module


@dataclass(frozen=True)
class TestRunResult:
    """Result of :meth:`BpfProgram.test_run`.

    Example::

        r = obj.program("xdp_pass").test_run(bytes(64), repeat=100)
        print(r.retval, r.duration_ns, len(r.data))
    """

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""


@guarded(
    [
        "_link",
        "_snapshot",
        "_with_fd",
        "attach",
        "attach_cgroup",
        "attach_freplace",
        "attach_iter",
        "attach_kprobe",
        "attach_kprobe_multi",
        "attach_kretprobe",
        "attach_ksyscall",
        "attach_lsm",
        "attach_netfilter",
        "attach_netkit",
        "attach_netns",
        "attach_perf_event",
        "attach_raw_tracepoint",
        "attach_socket",
        "attach_sockmap",
        "attach_tc",
        "attach_tcx",
        "attach_trace",
        "attach_tracepoint",
        "attach_uprobe",
        "attach_uprobe_multi",
        "attach_uretprobe",
        "attach_usdt",
        "attach_xdp",
        "autoload",
        "expected_attach_type",
        "fd",
        "info",
        "insn_count",
        "kernel_info",
        "log_level",
        "pin",
        "request_verifier_log",
        "set_attach_target",
        "test_run",
        "type",
        "unpin",
        "verifier_log",
    ]
)
class BpfProgram:
    """A program of a :class:`BpfObject`. Obtained from ``obj.programs`` / ``obj.program()``.

    Example::

        prog = obj.program("handle_exec")
        link = prog.attach()          # auto-attach from the SEC() name
    """

    def __init__(self, prog_ptr: Any, obj: BpfObject) -> None:
        self._ptr = prog_ptr
        self._obj = obj
        self._guard_lock = obj._guard_lock
        self._name = pystr(lib.bpf_program__name(prog_ptr))
        self._section = pystr(lib.bpf_program__section_name(prog_ptr))

    @classmethod
    def closed_stub(cls, name: str, obj: BpfObject) -> BpfProgram:
        """The wrapper of a program first asked for after its object was closed."""
        self = cls.__new__(cls)
        self._ptr = None
        self._obj = obj
        self._guard_lock = obj._guard_lock
        self._name = name
        self._section = ""
        return self

    # --- state checks -------------------------------------------------------------------
    def _p(self) -> Any:
        if self._obj._closed:
            raise BpfClosedError("Cannot use program after BpfObject is closed")
        return self._ptr

    def _before_load(self, what: str) -> Any:
        p = self._p()
        if self._obj._loaded:
            raise BpfPhaseError(
                f"cannot set {what} of program '{self._name}' after load (open phase only)"
            )
        return p

    # --- properties ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def section(self) -> str:
        return self._section

    def _snapshot(self) -> None:
        """Cache the metadata so it stays readable after the object is closed."""
        if not self._obj._closed:
            self._type = BpfProgType(lib.bpf_program__type(self._ptr))

    @property
    def type(self) -> BpfProgType:
        if self._obj._closed and hasattr(self, "_type"):
            return self._type
        return BpfProgType(lib.bpf_program__type(self._p()))

    @type.setter
    def type(self, value: BpfProgType | int) -> None:
        p = self._before_load("type")
        check_int(lib.bpf_program__set_type(p, int(value)), f"set type of '{self._name}' failed")

    @property
    def expected_attach_type(self) -> BpfAttachType:
        return BpfAttachType(lib.bpf_program__expected_attach_type(self._p()))

    @expected_attach_type.setter
    def expected_attach_type(self, value: BpfAttachType | int) -> None:
        p = self._before_load("expected_attach_type")
        check_int(
            lib.bpf_program__set_expected_attach_type(p, int(value)),
            f"set expected attach type of '{self._name}' failed",
        )

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program (settable before load)."""
        return bool(lib.bpf_program__autoload(self._p()))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        p = self._before_load("autoload")
        check_int(lib.bpf_program__set_autoload(p, bool(value)), "set autoload failed")

    @property
    def log_level(self) -> int:
        return int(lib.bpf_program__log_level(self._p()))

    @log_level.setter
    def log_level(self, value: int) -> None:
        p = self._before_load("log_level")
        check_int(lib.bpf_program__set_log_level(p, int(value)), "set log level failed")

    def set_attach_target(self, target: str, attach_prog_fd: int = 0) -> None:
        """Set the BTF attach target (function name) of fentry/fexit/freplace/tp_btf programs."""
        p = self._before_load("attach target")
        check_int(
            lib.bpf_program__set_attach_target(p, attach_prog_fd, cstr(target)),
            f"set attach target '{target}' of '{self._name}' failed",
        )

    @property
    def insn_count(self) -> int:
        return int(lib.bpf_program__insn_cnt(self._p()))

    @property
    def info(self) -> ProgramInfo:
        return ProgramInfo(name=self._name, section=self._section, type=self.type)

    @property
    def fd(self) -> int:
        """The program's fd (after load)."""
        fd = int(lib.bpf_program__fd(self._p()))
        if fd < 0:
            if not self._obj._loaded:
                raise BpfPhaseError(f"program '{self._name}' has no fd before load()")
            raise BpfError(f"program '{self._name}' has no fd (autoload was off)", -fd)
        return fd

    def __repr__(self) -> str:
        try:
            t = self.type.name
        except BpfClosedError:
            t = "?"
        return f"<BpfProgram '{self._name}' type={t}>"

    # --- attach -------------------------------------------------------------------------
    def _link(
        self, fn: Any, description: str, message: str, *args: Any, keep: Any = None
    ) -> BpfLink:
        p = self._p()
        if not self._obj._loaded:
            raise BpfPhaseError(f"cannot attach program '{self._name}' before load()")
        with capture_log() as log:
            ptr = fn(p, *args)
            err = ffi.errno
        if ptr == NULL:
            ffi.errno = err
        check_ptr(ptr, message, log)
        return BpfLink(ptr, description, self)

    def attach(self) -> BpfLink:
        """Attach using the SEC() name (libbpf auto-attach); LSM programs as attach_lsm().

        An LSM program raises ``BpfNotSupportedError`` where it could never run, as
        :meth:`attach_lsm` does."""
        if self.type is BpfProgType.LSM:
            self._check_lsm_active()
        return self._link(
            lib.bpf_program__attach,
            f"auto-attach {self._name}",
            f"attach program '{self._name}' failed",
        )

    def attach_kprobe(
        self, func_name: str, retprobe: bool = False, *, offset: int = 0, cookie: int = 0
    ) -> BpfLink:
        """Attach to a kernel function (``offset`` bytes into it)."""
        kind = "kretprobe" if retprobe else "kprobe"
        opts = new_opts(
            "bpf_kprobe_opts", retprobe=bool(retprobe), offset=offset, bpf_cookie=cookie
        )
        return self._link(
            lib.bpf_program__attach_kprobe_opts,
            f"{kind}:{func_name}" + (f"+{offset}" if offset else ""),
            f"attach {kind} '{func_name}' failed",
            cstr(func_name),
            opts.ptr,
            keep=opts,
        )

    def attach_kretprobe(self, func_name: str, *, cookie: int = 0) -> BpfLink:
        return self.attach_kprobe(func_name, retprobe=True, cookie=cookie)

    def attach_kprobe_multi(
        self,
        pattern: str | None = None,
        *,
        symbols: list[str] | None = None,
        retprobe: bool = False,
        cookies: list[int] | None = None,
    ) -> BpfLink:
        """Attach to every kernel function matching a glob ``pattern`` or in ``symbols``."""
        keep: list[Any] = []
        fields: dict[str, Any] = {"retprobe": bool(retprobe)}
        if symbols:
            names = [ffi.new("char[]", cstr(s)) for s in symbols]
            arr = ffi.new("const char *[]", names)
            keep += [names, arr]
            fields.update(syms=arr, cnt=len(symbols))
        if cookies:
            carr = ffi.new("__u64[]", cookies)
            keep.append(carr)
            fields["cookies"] = carr
        opts = new_opts("bpf_kprobe_multi_opts", **fields)
        return self._link(
            lib.bpf_program__attach_kprobe_multi_opts,
            f"kprobe_multi:{pattern or ','.join(symbols or [])}",
            f"attach kprobe_multi '{pattern or symbols}' failed",
            cstr(pattern) if pattern else NULL,
            opts.ptr,
            keep=(opts, keep),
        )

    def attach_ksyscall(self, name: str, *, retprobe: bool = False, cookie: int = 0) -> BpfLink:
        """Attach to a system call's kernel entry by its name (e.g. ``"openat"``)."""
        opts = new_opts("bpf_ksyscall_opts", retprobe=bool(retprobe), bpf_cookie=cookie)
        return self._link(
            lib.bpf_program__attach_ksyscall,
            f"ksyscall:{name}",
            f"attach ksyscall '{name}' failed",
            cstr(name),
            opts.ptr,
            keep=opts,
        )

    def attach_tracepoint(self, category: str, name: str, *, cookie: int = 0) -> BpfLink:
        opts = new_opts("bpf_tracepoint_opts", bpf_cookie=cookie)
        return self._link(
            lib.bpf_program__attach_tracepoint_opts,
            f"tracepoint:{category}/{name}",
            f"attach tracepoint '{category}/{name}' failed",
            cstr(category),
            cstr(name),
            opts.ptr,
            keep=opts,
        )

    def attach_trace(self, *, cookie: int = 0) -> BpfLink:
        """Attach a tp_btf/fentry/fexit/fmod_ret program to its BTF target."""
        opts = new_opts("bpf_trace_opts", cookie=cookie)
        return self._link(
            lib.bpf_program__attach_trace_opts,
            f"trace:{self._name}",
            f"attach trace program '{self._name}' failed",
            opts.ptr,
            keep=opts,
        )

    def _check_lsm_active(self) -> None:
        why = lsm_inactive_message()
        if why is not None:
            raise BpfNotSupportedError(
                f"attach LSM '{self._name}' refused: {why}", _errno.EOPNOTSUPP
            )

    def attach_lsm(self, *, require_active: bool = True) -> BpfLink:
        """Attach a BPF LSM program to its hook.

        On a kernel whose active LSM list (/sys/kernel/security/lsm) lacks ``bpf`` the
        kernel would accept the link and never run the program: this raises
        ``BpfNotSupportedError`` naming the ``lsm=`` boot parameter instead.
        ``require_active=False`` attaches anyway (e.g. a daemon that starts before a
        reboot with the right ``lsm=``, or checks by itself). When securityfs is not
        mounted the list cannot be read and the attach proceeds.
        """
        if require_active:
            self._check_lsm_active()
        return self._link(
            lib.bpf_program__attach_lsm, f"lsm:{self._name}", f"attach LSM '{self._name}' failed"
        )

    def attach_freplace(self, target: BpfProgram | int, func_name: str) -> BpfLink:
        """Replace global function ``func_name`` of ``target`` (a program or its fd)."""
        fd = target if isinstance(target, int) else target.fd
        return self._link(
            lib.bpf_program__attach_freplace,
            f"freplace:{func_name}",
            f"attach freplace '{func_name}' failed",
            fd,
            cstr(func_name),
        )

    def attach_perf_event(self, fd: int, *, cookie: int = 0) -> BpfLink:
        """Attach to an open perf event fd (see :func:`tinybpf.perf_event_open`). The link
        takes ownership of the fd and closes it when destroyed."""
        opts = new_opts("bpf_perf_event_opts", bpf_cookie=cookie)
        return self._link(
            lib.bpf_program__attach_perf_event_opts,
            f"perf_event:fd{fd}",
            f"attach perf event fd {fd} failed",
            int(fd),
            opts.ptr,
            keep=opts,
        )

    def attach_netns(self, netns: str | os.PathLike[str] | int) -> BpfLink:
        """Attach (sk_lookup, flow dissector) to a network namespace: a path such as
        ``/proc/self/ns/net`` or ``/run/netns/NAME``, or an open fd (not closed)."""
        return self._with_fd(netns, lib.bpf_program__attach_netns, "netns")

    attach_sk_lookup = attach_netns

    def _with_fd(
        self,
        target: str | os.PathLike[str] | int,
        fn: Any,
        kind: str,
        *extra: Any,
        keep: Any = None,
    ) -> BpfLink:
        """Attach through an fd: a caller's fd (not closed) or a path opened for the call."""
        if isinstance(target, int):
            return self._link(
                fn,
                f"{kind}:fd{target}",
                f"attach {kind} fd {target} failed",
                target,
                *extra,
                keep=keep,
            )
        fd = os.open(os.fspath(target), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return self._link(
                fn, f"{kind}:{target}", f"attach {kind} '{target}' failed", fd, *extra, keep=keep
            )
        finally:
            os.close(fd)

    def attach_sockmap(self, sockmap: Any) -> BpfLink:
        """Attach an sk_skb/sk_msg program to a sockmap/sockhash (a BpfMap or fd)."""
        fd = sockmap if isinstance(sockmap, int) else sockmap.fd
        return self._link(
            lib.bpf_program__attach_sockmap,
            f"sockmap:fd{fd}",
            f"attach to sockmap fd {fd} failed",
            fd,
        )

    def attach_netfilter(self, pf: int, hook: int, priority: int, *, flags: int = 0) -> BpfLink:
        """Attach to a netfilter hook (``pf``: socket.AF_INET..., ``hook``: NF_INET_*)."""
        opts = new_opts("bpf_netfilter_opts", pf=pf, hooknum=hook, priority=priority, flags=flags)
        return self._link(
            lib.bpf_program__attach_netfilter,
            f"netfilter:pf{pf}:hook{hook}:prio{priority}",
            f"attach netfilter pf={pf} hook={hook} failed",
            opts.ptr,
            keep=opts,
        )

    def _ifindex(self, interface: str | int) -> int:
        import socket

        return socket.if_nametoindex(interface) if isinstance(interface, str) else int(interface)

    def _order_opts(self, ctype: str, before: Any, after: Any, expected_revision: int) -> Any:
        flags = 0
        rel_fd = 0
        anchor = before if before is not None else after
        if before is not None and after is not None:
            raise ValueError("give at most one of before= and after=")
        if anchor is not None:
            flags = lib.BPF_F_BEFORE if before is not None else lib.BPF_F_AFTER
            rel_fd = anchor if isinstance(anchor, int) else anchor.fd
        return new_opts(ctype, flags=flags, relative_fd=rel_fd, expected_revision=expected_revision)

    def attach_tcx(
        self,
        interface: str | int,
        direction: str = "ingress",
        *,
        before: Any = None,
        after: Any = None,
        expected_revision: int = 0,
    ) -> BpfLink:
        """Attach a TC program through tcx (``direction`` "ingress" or "egress"), optionally
        ordered ``before``/``after`` another program (BpfProgram or fd)."""
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
        want = BpfAttachType.TCX_INGRESS if direction == "ingress" else BpfAttachType.TCX_EGRESS
        if self.expected_attach_type != want and not self._obj._loaded:
            self.expected_attach_type = want
        opts = self._order_opts("bpf_tcx_opts", before, after, expected_revision)
        return self._link(
            lib.bpf_program__attach_tcx,
            f"tcx:{interface}:{direction}",
            f"attach tcx {direction} on '{interface}' failed",
            self._ifindex(interface),
            opts.ptr,
            keep=opts,
        )

    def attach_netkit(
        self,
        interface: str | int,
        *,
        before: Any = None,
        after: Any = None,
        expected_revision: int = 0,
    ) -> BpfLink:
        """Attach to a netkit device (primary or peer, per the program's section)."""
        opts = self._order_opts("bpf_netkit_opts", before, after, expected_revision)
        return self._link(
            lib.bpf_program__attach_netkit,
            f"netkit:{interface}",
            f"attach netkit on '{interface}' failed",
            self._ifindex(interface),
            opts.ptr,
            keep=opts,
        )

    def attach_tc(
        self,
        interface: str | int,
        direction: str = "ingress",
        *,
        priority: int = 1,
        handle: int = 1,
    ) -> TcAttachment:
        """Attach through the legacy clsact qdisc (created when missing, left in place).

        Returns a :class:`TcAttachment` whose ``detach()``/``destroy()`` removes the filter.
        """
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
        fd = self.fd
        ifindex = self._ifindex(interface)
        point = lib.BPF_TC_INGRESS if direction == "ingress" else lib.BPF_TC_EGRESS
        hook = new_opts("bpf_tc_hook", ifindex=ifindex, attach_point=point)
        with capture_log() as log:
            ret = lib.bpf_tc_hook_create(hook.ptr)
        if ret < 0 and ret != -_errno.EEXIST:
            check_int(ret, f"create clsact qdisc on '{interface}' failed", log)
        opts = new_opts("bpf_tc_opts", prog_fd=fd, priority=priority, handle=handle)
        with capture_log() as log:
            ret = lib.bpf_tc_attach(hook.ptr, opts.ptr)
        check_int(ret, f"attach tc {direction} on '{interface}' failed", log)
        return TcAttachment(
            self, hook, int(opts.ptr.handle), int(opts.ptr.priority), interface, direction
        )

    def attach_xdp(
        self, interface: str | int, *, mode: str | None = None, replace: bool = False
    ) -> BpfLink | XdpAttachment:
        """Attach an XDP program to an interface (name or index).

        Without ``mode`` this creates a bpf_link (detached with the link). ``mode`` "skb"
        (generic), "driver" (native) or "hw" uses the netlink attach with that mode flag
        instead; ``replace`` allows replacing a program already attached that way.
        """
        ifindex = self._ifindex(interface)
        desc = f"xdp:{interface}" if isinstance(interface, str) else f"xdp:if{ifindex}"
        if mode is None and not replace:
            return self._link(
                lib.bpf_program__attach_xdp, desc, f"attach XDP to '{interface}' failed", ifindex
            )
        flags = {
            None: 0,
            "skb": lib.XDP_FLAGS_SKB_MODE,
            "driver": lib.XDP_FLAGS_DRV_MODE,
            "hw": lib.XDP_FLAGS_HW_MODE,
        }.get(mode, -1)
        if flags < 0:
            raise ValueError(f"XDP mode must be 'skb', 'driver' or 'hw', not {mode!r}")
        if not replace:
            flags |= lib.XDP_FLAGS_UPDATE_IF_NOEXIST
        fd = self.fd
        with capture_log() as log:
            ret = lib.bpf_xdp_attach(ifindex, fd, flags, NULL)
        check_int(ret, f"attach XDP ({mode}) to '{interface}' failed", log)
        return XdpAttachment(self, ifindex, flags & ~lib.XDP_FLAGS_UPDATE_IF_NOEXIST, desc)

    def attach_socket(self, sock: socket.socket | int) -> SocketFilter:
        """Attach a socket filter program to a socket (SO_ATTACH_BPF)."""
        import socket

        fd = self.fd
        s = sock if isinstance(sock, socket.socket) else socket.socket(fileno=os.dup(sock))
        s.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, fd)
        return SocketFilter(self, s, owned=not isinstance(sock, socket.socket))

    def attach_iter(
        self,
        *,
        map: Any = None,
        cgroup: str | os.PathLike[str] | int | None = None,
        cgroup_order: int = 0,
        tid: int = 0,
        pid: int = 0,
        pid_fd: int = 0,
    ) -> IterLink:
        """Attach a BPF iterator program; ``read()`` on the returned link runs it.

        ``map`` selects a map iterator's map; ``cgroup`` a cgroup iterator's start;
        ``tid``/``pid``/``pid_fd`` restrict a task iterator.
        """
        map_fd = -1 if map is None else (map if isinstance(map, int) else map.fd)
        cg_fd = -1
        opened = False
        if cgroup is not None:
            if isinstance(cgroup, int):
                cg_fd = cgroup
            else:
                cg_fd = os.open(os.fspath(cgroup), os.O_RDONLY | os.O_CLOEXEC)
                opened = True
        try:
            link = self._link(
                lib.tinybpf_attach_iter,
                f"iter:{self._name}",
                f"attach iterator '{self._name}' failed",
                map_fd,
                cg_fd,
                cgroup_order,
                tid,
                pid,
                pid_fd,
            )
        finally:
            if opened:
                os.close(cg_fd)
        return IterLink(link)

    # --- pinning, info, logs ------------------------------------------------------------
    def pin(self, path: str) -> None:
        """Pin the program at ``path`` in a BPF filesystem."""
        p = self._p()
        with capture_log() as log:
            ret = lib.bpf_program__pin(
                p, cstr(check_pin_path(path, f"pin program '{self._name}' to '{path}'"))
            )
        check_int(ret, f"pin program '{self._name}' to '{path}' failed", log)

    def unpin(self, path: str) -> None:
        p = self._p()
        with capture_log() as log:
            ret = lib.bpf_program__unpin(p, cstr(path))
        check_int(ret, f"unpin program '{self._name}' from '{path}' failed", log)

    def kernel_info(self) -> KernelProgramInfo:
        """The kernel's view of the loaded program (id, tag, sizes, run statistics)."""
        from tinybpf.introspect import program_info_by_fd

        return program_info_by_fd(self.fd)

    def request_verifier_log(self, size: int = 1 << 20, level: int = 1) -> None:
        """Before load: keep the verifier log of a successful load (``verifier_log``)."""
        p = self._before_load("verifier log")
        buf = ffi.new("char[]", size)
        self._log_buf = buf
        check_int(lib.bpf_program__set_log_buf(p, buf, size), "set log buffer failed")
        check_int(lib.bpf_program__set_log_level(p, level), "set log level failed")

    @property
    def verifier_log(self) -> str:
        """The verifier log kept by :meth:`request_verifier_log` ("" if none)."""
        p = self._p()
        size = ffi.new("size_t *")
        ptr = lib.bpf_program__log_buf(p, size)
        return "" if ptr == NULL else ffi.string(ptr).decode("utf-8", "replace")

    def attach_raw_tracepoint(self, name: str) -> BpfLink:
        return self._link(
            lib.bpf_program__attach_raw_tracepoint,
            f"raw_tracepoint:{name}",
            f"attach raw tracepoint '{name}' failed",
            cstr(name),
        )

    def attach_uprobe(
        self,
        binary_path: str | os.PathLike[str],
        offset: int = 0,
        pid: int = -1,
        retprobe: bool = False,
        *,
        symbol: str | None = None,
        cookie: int = 0,
        ref_ctr_offset: int = 0,
    ) -> BpfLink:
        """Attach to a function of an executable or shared library (pid -1: every process).

        Give ``symbol`` (libbpf resolves it, also in shared libraries such as ``"libc.so.6"``;
        ``offset`` is then added to it) or a raw file ``offset``. ``cookie`` is readable with
        ``bpf_get_attach_cookie()``; ``ref_ctr_offset`` enables a USDT semaphore.
        """
        kind = "uretprobe" if retprobe else "uprobe"
        where = f"{symbol}+{offset}" if symbol else str(offset)
        opts = new_opts(
            "bpf_uprobe_opts",
            retprobe=bool(retprobe),
            func_name=symbol,
            bpf_cookie=cookie,
            ref_ctr_offset=ref_ctr_offset,
        )
        return self._link(
            lib.bpf_program__attach_uprobe_opts,
            f"{kind}:{binary_path}:{where}" if symbol else f"{kind}:{binary_path}+{offset}",
            f"attach {kind} '{binary_path}:{where}' failed",
            int(pid),
            cstr(binary_path),
            int(offset),
            opts.ptr,
            keep=opts,
        )

    def attach_uretprobe(
        self,
        binary_path: str | os.PathLike[str],
        offset: int = 0,
        pid: int = -1,
        *,
        symbol: str | None = None,
        cookie: int = 0,
    ) -> BpfLink:
        return self.attach_uprobe(
            binary_path, offset, pid, retprobe=True, symbol=symbol, cookie=cookie
        )

    def attach_uprobe_multi(
        self,
        binary_path: str | os.PathLike[str],
        pattern: str | None = None,
        *,
        symbols: list[str] | None = None,
        pid: int = -1,
        retprobe: bool = False,
        cookies: list[int] | None = None,
    ) -> BpfLink:
        """Attach to every function of ``binary_path`` matching a glob ``pattern`` (or to the
        listed ``symbols``) with one uprobe_multi link."""
        keep: list[Any] = []
        fields: dict[str, Any] = {"retprobe": bool(retprobe)}
        if symbols:
            names = [ffi.new("char[]", cstr(s)) for s in symbols]
            arr = ffi.new("const char *[]", names)
            keep += [names, arr]
            fields.update(syms=arr, cnt=len(symbols))
        if cookies:
            carr = ffi.new("__u64[]", cookies)
            keep.append(carr)
            fields["cookies"] = carr
        opts = new_opts("bpf_uprobe_multi_opts", **fields)
        kind = "uretprobe_multi" if retprobe else "uprobe_multi"
        return self._link(
            lib.bpf_program__attach_uprobe_multi,
            f"{kind}:{binary_path}:{pattern or ','.join(symbols or [])}",
            f"attach {kind} '{binary_path}:{pattern or symbols}' failed",
            int(pid),
            cstr(binary_path),
            cstr(pattern) if pattern else NULL,
            opts.ptr,
            keep=(opts, keep),
        )

    def attach_usdt(
        self,
        binary_path: str | os.PathLike[str],
        provider: str,
        name: str,
        *,
        pid: int = -1,
        cookie: int = 0,
    ) -> BpfLink:
        """Attach to a USDT probe (``provider:name``) compiled into ``binary_path``."""
        opts = new_opts("bpf_usdt_opts", usdt_cookie=cookie)
        return self._link(
            lib.bpf_program__attach_usdt,
            f"usdt:{binary_path}:{provider}:{name}",
            f"attach USDT '{provider}:{name}' in '{binary_path}' failed",
            int(pid),
            cstr(binary_path),
            cstr(provider),
            cstr(name),
            opts.ptr,
            keep=opts,
        )

    def attach_cgroup(
        self,
        cgroup: str | os.PathLike[str] | int,
        *,
        before: Any = None,
        after: Any = None,
        expected_revision: int = 0,
        flags: int = 0,
    ) -> BpfLink:
        """Attach to a cgroup v2 directory (path) or an open cgroup fd (not closed), as a
        link. ``before``/``after`` (a program or fd) place it among the cgroup's programs;
        ``flags`` adds attach flags (BPF_F_*)."""
        opts = self._order_opts("bpf_cgroup_opts", before, after, expected_revision)
        opts.ptr.flags |= flags
        return self._with_fd(
            cgroup, lib.bpf_program__attach_cgroup_opts, "cgroup", opts.ptr, keep=opts
        )

    # --- test run -----------------------------------------------------------------------
    def test_run(
        self,
        data: bytes = b"",
        ctx: bytes | None = None,
        repeat: int = 1,
        *,
        data_out_size: int | None = None,
        ctx_out_size: int | None = None,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program in the kernel (BPF_PROG_TEST_RUN) ``repeat`` times.

        Returns the program's return value, the output data (packet programs), the output
        context and the average duration per run in nanoseconds.
        """
        return _test_run(
            self.fd,
            self._name,
            data,
            ctx,
            repeat,
            data_out_size,
            ctx_out_size,
            flags,
            cpu,
            prog_type=self.type,
        )


def _test_run(
    fd: int,
    name: str,
    data: bytes = b"",
    ctx: bytes | None = None,
    repeat: int = 1,
    data_out_size: int | None = None,
    ctx_out_size: int | None = None,
    flags: int = 0,
    cpu: int = 0,
    prog_type: int | None = None,
) -> TestRunResult:
    """BPF_PROG_TEST_RUN. The caller's buffers are never written: the kernel gets copies.

    SYSCALL programs take no data, repeat or output buffers; the kernel writes their
    context back into the input context, which is returned as ``ctx``.
    """
    data = bytes(data)
    syscall = prog_type == BpfProgType.SYSCALL
    if syscall:
        if data or data_out_size:
            raise ValueError(f"SYSCALL program '{name}' takes a ctx, not data")
        repeat = 0 if repeat == 1 else repeat
    out_size = data_out_size if data_out_size is not None else (len(data) + 256 if data else 0)
    data_out = ffi.new("char[]", out_size) if out_size else NULL
    ctx_in = ffi.new("char[]", bytes(ctx)) if ctx else NULL
    cout_size = ctx_out_size or 0
    ctx_out = ffi.new("char[]", cout_size) if cout_size else NULL
    opts = new_opts(
        "bpf_test_run_opts",
        data_in=ffi.from_buffer(data) if data else NULL,
        data_size_in=len(data),
        data_out=data_out,
        data_size_out=out_size,
        ctx_in=ctx_in,
        ctx_size_in=len(ctx) if ctx else 0,
        ctx_out=ctx_out,
        ctx_size_out=cout_size,
        repeat=repeat,
        flags=flags,
        cpu=cpu,
    )
    with capture_log() as log:
        ret = lib.bpf_prog_test_run_opts(fd, opts.ptr)
    check_int(ret, f"test_run of program '{name}' failed", log)
    o = opts.ptr
    out = bytes(ffi.buffer(data_out, o.data_size_out)) if out_size else b""
    if cout_size:
        cout = bytes(ffi.buffer(ctx_out, o.ctx_size_out))
    elif ctx:
        cout = bytes(ffi.buffer(ctx_in, len(ctx)))  # written back in place (SYSCALL)
    else:
        cout = b""
    return TestRunResult(int(o.retval), out, int(o.duration), cout)
