"""The attach family of a program: one method per attach kind (``BpfProgram.attach_*``),
each returning a :class:`~tinybpf.BpfLink` (or a kind-specific attachment)."""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._core import capture_log, check_int, cstr, errnos, new_opts, progcalls
from ._core.consts_b import (
    BPF_F_AFTER,
    BPF_F_BEFORE,
    BPF_TC_EGRESS,
    BPF_TC_INGRESS,
    SO_ATTACH_BPF,
    XDP_FLAGS_DRV_MODE,
    XDP_FLAGS_HW_MODE,
    XDP_FLAGS_SKB_MODE,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
)
from ._diagnose import (
    Explanation,
    explain_auto_attach,
    explain_kprobe,
    explain_kprobe_multi,
    explain_uprobe,
)
from ._kernel import lsm_inactive_message
from ._netns import Netns, NetnsLike, at, ifindex, keep, run_in
from ._types import BpfAttachType, BpfProgType
from .btf import kernel_enum_value
from .errors import BpfError, BpfNotSupportedError, BpfPhaseError
from .link import (
    BpfLink,
    IterLink,
    SocketFilter,
    TcAttachment,
    XdpAttachment,
    destroy_tc_hook,
    tc_hook_in_use,
)

if TYPE_CHECKING:
    import socket


from ._program_setup import ProgramSetup

__all__ = ["ProgramAttach"]

_SO_ATTACH_BPF: int = SO_ATTACH_BPF  # not exported by the socket module

# What a program whose section names no target needs (BpfObject.attach_all's skip reasons).
_NEEDS_TARGET = {
    BpfProgType.XDP: "an XDP program needs an interface: attach_xdp(interface)",
    BpfProgType.SCHED_CLS: "a tc program needs an interface: attach_tcx(interface) or "
    "attach_tc(interface)",
    BpfProgType.SCHED_ACT: "a tc action needs an interface: attach_tc(interface)",
    BpfProgType.KPROBE: "the section names no function or binary: attach_kprobe(), "
    "attach_uprobe(binary, symbol=...) or attach_usdt()",
    BpfProgType.CGROUP_SKB: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.CGROUP_SOCK: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.CGROUP_SOCK_ADDR: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.CGROUP_SOCKOPT: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.CGROUP_SYSCTL: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.CGROUP_DEVICE: "a cgroup program needs a cgroup: attach_cgroup(path)",
    BpfProgType.SOCKET_FILTER: "a socket filter needs a socket: attach_socket(sock)",
    BpfProgType.SK_SKB: "needs a sockmap: attach_sockmap(map)",
    BpfProgType.SK_MSG: "needs a sockmap: attach_sockmap(map)",
    BpfProgType.PERF_EVENT: "needs perf events: attach_perf_event(fd)",
    BpfProgType.NETFILTER: "needs a hook: attach_netfilter(pf, hook, priority)",
    BpfProgType.SK_LOOKUP: "needs a network namespace: attach_netns(path)",
    BpfProgType.FLOW_DISSECTOR: "needs a network namespace: attach_netns(path)",
    BpfProgType.EXT: "needs a target program: attach_freplace(target, func)",
    BpfProgType.SYSCALL: "a syscall program is run, not attached: test_run()",
}


class ProgramAttach(ProgramSetup):
    """The ``attach_*`` methods of :class:`~tinybpf.BpfProgram`."""

    # --- attach -------------------------------------------------------------------------
    def _link(
        self,
        fn: Any,
        description: str,
        message: str,
        *args: Any,
        keep: Any = None,
        missing: Callable[[int, str | None], Explanation | None] | None = None,
        missing_errnos: frozenset[int] = errnos.MISSING,
    ) -> BpfLink:
        """Attach through ``fn``. ``missing(errno, libbpf_output)`` explains an errno of
        ``missing_errnos``: a missing kernel function or symbol is not a missing file."""
        p = self._p()
        if not self._obj._loaded:
            raise BpfPhaseError(f"cannot attach program '{self._name}' before load()")
        try:
            ptr = fn(p, *args, what=message)
        except BpfError as e:
            err = e.errno or 0
            why = missing(err, e.libbpf_log) if missing and err in missing_errnos else None
            if why is None:
                raise
            cls, text = why
            raise cls(f"{message}: {text}", err, e.libbpf_log) from None
        return BpfLink(ptr, description, self)

    def attach(self) -> BpfLink:
        """Attach using the SEC() name (libbpf auto-attach); LSM programs as attach_lsm().

        An LSM program raises ``BpfNotSupportedError`` where it could never run, as
        :meth:`attach_lsm` does. Sections that name no target (``SEC("xdp")``,
        ``SEC("tc")``, ``SEC("tcx/ingress")``,
        a bare ``SEC("kprobe")`` or ``SEC("uprobe")``...) cannot be auto-attached: the error
        names the method to call instead (``attach_xdp(interface)``...).
        """
        if self.type is BpfProgType.LSM:
            self._check_lsm_active()
        try:
            return self._link(
                progcalls.attach,
                f"auto-attach {self._name}",
                f"attach program '{self._name}' failed",
                missing=lambda _err, log: explain_auto_attach(self._section, log),
            )
        except BpfNotSupportedError as e:
            hint = (
                _manual_attach(self._section, self.type)
                if errnos.is_(e.errno, errnos.OPNOTSUPP)
                else None
            )
            if hint is None:
                raise
            raise BpfNotSupportedError(
                f"attach program '{self._name}' failed: SEC(\"{self._section}\") names no "
                f"target libbpf can attach to by itself; call prog.{hint} instead",
                _errno.EOPNOTSUPP,
                e.libbpf_log,
            ) from None

    def _auto_attach(self) -> BpfLink | None:
        """Attach from the SEC() name as libbpf's skeleton does: None when the section
        does not say where (xdp, tc, a uprobe without a binary...) or autoattach is off."""
        p = self._p()
        ptr = progcalls.auto_attach(
            p, what=f"attach program '{self._name}' (section '{self._section}')"
        )
        if ptr is None:
            return None
        return BpfLink(ptr, f"auto-attach {self._name}", self)

    def _skip_reason(self) -> str:
        """Why :meth:`BpfObject.attach_all` cannot attach this program by itself."""
        if not self.autoload:
            return "not loaded (autoload is off)"
        if not self.autoattach:
            return "autoattach is off"
        return _NEEDS_TARGET.get(
            self.type,
            f"section '{self._section}' does not say where to attach: use an attach_*() "
            "method with a target",
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
            progcalls.attach_kprobe,
            f"{kind}:{func_name}" + (f"+{offset}" if offset else ""),
            f"attach kprobe to '{func_name}' failed",
            cstr(func_name),
            opts.ptr,
            keep=opts,
            missing=lambda err, _log: explain_kprobe(func_name, err=err),
            missing_errnos=errnos.MISSING_OR_INVALID,
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
            arr, names = progcalls.c_strings([cstr(s) for s in symbols])
            keep += [names, arr]
            fields.update(syms=arr, cnt=len(symbols))
        if cookies:
            carr = progcalls.u64_array(cookies)
            keep.append(carr)
            fields["cookies"] = carr
        opts = new_opts("bpf_kprobe_multi_opts", **fields)
        return self._link(
            progcalls.attach_kprobe_multi,
            f"kprobe_multi:{pattern or ','.join(symbols or [])}",
            f"attach kprobe_multi '{pattern or symbols}' failed",
            cstr(pattern) if pattern else None,
            opts.ptr,
            keep=(opts, keep),
            missing=lambda _err, _log: explain_kprobe_multi(
                f"'{pattern}'" if pattern else str(symbols), pattern is not None
            ),
        )

    def attach_ksyscall(self, name: str, *, retprobe: bool = False, cookie: int = 0) -> BpfLink:
        """Attach to a system call's kernel entry by its name (e.g. ``"openat"``)."""
        opts = new_opts("bpf_ksyscall_opts", retprobe=bool(retprobe), bpf_cookie=cookie)
        return self._link(
            progcalls.attach_ksyscall,
            f"ksyscall:{name}",
            f"attach ksyscall '{name}' failed",
            cstr(name),
            opts.ptr,
            keep=opts,
            missing=lambda err, _log: explain_kprobe(name, syscall=True, err=err),
            missing_errnos=errnos.MISSING_OR_INVALID,
        )

    def attach_tracepoint(self, category: str, name: str, *, cookie: int = 0) -> BpfLink:
        opts = new_opts("bpf_tracepoint_opts", bpf_cookie=cookie)
        return self._link(
            progcalls.attach_tracepoint,
            f"tracepoint:{category}/{name}",
            f"attach tracepoint to '{category}/{name}' failed",
            cstr(category),
            cstr(name),
            opts.ptr,
            keep=opts,
        )

    def attach_trace(self, *, cookie: int = 0) -> BpfLink:
        """Attach a tp_btf/fentry/fexit/fmod_ret program to its BTF target."""
        opts = new_opts("bpf_trace_opts", cookie=cookie)
        return self._link(
            progcalls.attach_trace,
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
            progcalls.attach_lsm, f"lsm:{self._name}", f"attach LSM '{self._name}' failed"
        )

    def attach_freplace(self, target: ProgramSetup | int, func_name: str) -> BpfLink:
        """Replace global function ``func_name`` of ``target`` (a program or its fd)."""
        fd = target if isinstance(target, int) else target.fd
        return self._link(
            progcalls.attach_freplace,
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
            progcalls.attach_perf_event,
            f"perf_event:fd{fd}",
            f"attach perf event fd {fd} failed",
            int(fd),
            opts.ptr,
            keep=opts,
        )

    def attach_netns(self, netns: str | os.PathLike[str] | int) -> BpfLink:
        """Attach (sk_lookup, flow dissector) to a network namespace: a path such as
        ``/proc/self/ns/net`` or ``/run/netns/NAME``, or an open fd (not closed)."""
        return self._with_fd(netns, progcalls.attach_netns, "netns")

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
                f"attach {kind} to fd {target} failed",
                target,
                *extra,
                keep=keep,
            )
        fd = os.open(os.fspath(target), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return self._link(
                fn, f"{kind}:{target}", f"attach {kind} to '{target}' failed", fd, *extra, keep=keep
            )
        finally:
            os.close(fd)

    def attach_sockmap(self, sockmap: Any) -> BpfLink:
        """Attach an sk_skb/sk_msg program to a sockmap/sockhash (a BpfMap or fd)."""
        fd = sockmap if isinstance(sockmap, int) else sockmap.fd
        return self._link(
            progcalls.attach_sockmap,
            f"sockmap:fd{fd}",
            f"attach to sockmap fd {fd} failed",
            fd,
        )

    def attach_netfilter(
        self,
        pf: int,
        hook: str | int,
        priority: int,
        *,
        flags: int = 0,
        netns: NetnsLike | None = None,
    ) -> BpfLink:
        """Attach to a netfilter hook (``pf``: NFPROTO_IPV4 / NFPROTO_IPV6, the values of
        socket.AF_INET / AF_INET6; ``hook``: an ``NF_INET_*`` value or its name in any case,
        e.g. ``"local_in"``, read from the kernel's BTF).

        Netfilter hooks belong to a network namespace: the caller's, or ``netns`` (a path
        such as ``/run/netns/NAME`` or ``/proc/PID/ns/net``, an open fd, or an object with
        ``fileno()``). The link detaches from any namespace."""
        hook = kernel_enum_value("nf_inet_hooks", hook, "netfilter hook", ("NF_INET_",))
        opts = new_opts("bpf_netfilter_opts", pf=pf, hooknum=hook, priority=priority, flags=flags)
        return run_in(
            netns,
            lambda ns: self._link(
                progcalls.attach_netfilter,
                f"netfilter:pf{pf}:hook{hook}:prio{priority}{_ns_tag(ns)}",
                f"attach netfilter pf={pf} hook={hook}{at(ns)} failed",
                opts.ptr,
                keep=opts,
            ),
        )

    def _ifindex(self, interface: str | int, ns: Netns | None = None) -> int:
        return ifindex(interface, ns, f"attach program '{self._name}'")

    def _order_opts(self, ctype: str, before: Any, after: Any, expected_revision: int) -> Any:
        flags = 0
        rel_fd = 0
        anchor = before if before is not None else after
        if before is not None and after is not None:
            raise ValueError("give at most one of before= and after=")
        if anchor is not None:
            flags = BPF_F_BEFORE if before is not None else BPF_F_AFTER
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
        netns: NetnsLike | None = None,
    ) -> BpfLink:
        """Attach a TC program through tcx (``direction`` "ingress" or "egress"), optionally
        ordered ``before``/``after`` another program (BpfProgram or fd). With ``netns`` (a
        path such as ``/run/netns/NAME``, an open fd, or an object with ``fileno()``) the
        interface is looked up and attached in that network namespace.

        The program must have been loaded for that direction: ``SEC("tcx/ingress")`` or
        ``SEC("tcx/egress")``, or ``expected_attach_type`` set to ``TCX_INGRESS`` /
        ``TCX_EGRESS`` before load. Another direction raises ``BpfError`` (EINVAL).
        """
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
        want = BpfAttachType.TCX_INGRESS if direction == "ingress" else BpfAttachType.TCX_EGRESS
        self._p()
        if not self._obj._loaded:
            raise BpfPhaseError(f"cannot attach program '{self._name}' before load()")
        have = self.expected_attach_type
        if have != want:
            # libbpf attaches on the direction the program was loaded for: refuse rather
            # than attach on the other one
            fix = (
                f'put it in SEC("tcx/{direction}"), or set prog.expected_attach_type = '
                f"BpfAttachType.{want.name} before load()"
            )
            if have in (BpfAttachType.TCX_INGRESS, BpfAttachType.TCX_EGRESS):
                other = "ingress" if have == BpfAttachType.TCX_INGRESS else "egress"
                why = f"was loaded for tcx {other} and cannot attach on {direction}"
            else:
                why = f"was not loaded for tcx (expected attach type {have.name})"
                fix += "; attach_tc() attaches it through the legacy clsact qdisc"
            raise BpfError(
                f"attach tcx {direction} on '{interface}' failed: program '{self._name}' "
                f'(SEC("{self._section}")) {why}: {fix}',
                _errno.EINVAL,
            )
        opts = self._order_opts("bpf_tcx_opts", before, after, expected_revision)
        return run_in(
            netns,
            lambda ns: self._link(
                progcalls.attach_tcx,
                f"tcx:{interface}:{direction}{_ns_tag(ns)}",
                f"attach tcx {direction} on '{interface}'{at(ns)} failed",
                self._ifindex(interface, ns),
                opts.ptr,
                keep=opts,
            ),
        )

    def attach_netkit(
        self,
        interface: str | int,
        *,
        before: Any = None,
        after: Any = None,
        expected_revision: int = 0,
        netns: NetnsLike | None = None,
    ) -> BpfLink:
        """Attach to a netkit device (primary or peer, per the program's section), in the
        network namespace ``netns`` when given (a path, an open fd or a ``fileno()``)."""
        opts = self._order_opts("bpf_netkit_opts", before, after, expected_revision)
        return run_in(
            netns,
            lambda ns: self._link(
                progcalls.attach_netkit,
                f"netkit:{interface}{_ns_tag(ns)}",
                f"attach netkit on '{interface}'{at(ns)} failed",
                self._ifindex(interface, ns),
                opts.ptr,
                keep=opts,
            ),
        )

    def attach_tc(
        self,
        interface: str | int,
        direction: str = "ingress",
        *,
        priority: int = 1,
        handle: int = 1,
        netns: NetnsLike | None = None,
    ) -> TcAttachment:
        """Attach through the legacy clsact qdisc, which is created when missing.

        Returns a :class:`TcAttachment` whose ``detach()``/``destroy()`` removes the filter.
        A clsact qdisc created here is removed when the last attachment of this process on
        that interface is destroyed (with any filter others added to it meanwhile); one that
        existed before is left in place.

        With ``netns`` (a path such as ``/run/netns/NAME`` or ``/proc/PID/ns/net``, an open
        fd, or an object with ``fileno()``) the interface is looked up and the filter made
        in that network namespace; the attachment keeps it, so ``destroy()`` from any
        namespace removes the filter (and qdisc) there.
        """
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
        return run_in(netns, lambda ns: self._attach_tc(interface, direction, priority, handle, ns))

    def _attach_tc(
        self, interface: str | int, direction: str, priority: int, handle: int, ns: Netns | None
    ) -> TcAttachment:
        fd = self.fd
        ifindex = self._ifindex(interface, ns)
        point = BPF_TC_INGRESS if direction == "ingress" else BPF_TC_EGRESS
        hook = new_opts("bpf_tc_hook", ifindex=ifindex, attach_point=point)
        netns = keep(ns)
        try:
            with capture_log() as log:
                ret = progcalls.tc_hook_create(hook.ptr)
            if ret == errnos.RET_ALREADY_EXISTS:
                log.consumed = True  # (libbpf warns "Exclusivity flag on": it is no error)
            elif ret < 0:
                check_int(ret, f"create clsact qdisc on '{interface}'{at(ns)} failed", log)
            created = ret == 0
            opts = new_opts("bpf_tc_opts", prog_fd=fd, priority=priority, handle=handle)
            with capture_log() as log:
                ret = progcalls.tc_attach(hook.ptr, opts.ptr)
            if ret < 0:
                if created and not tc_hook_in_use(netns.ino, ifindex):
                    destroy_tc_hook(ifindex)  # a failed attach leaves no qdisc behind
                check_int(ret, f"attach tc {direction} on '{interface}'{at(ns)} failed", log)
            return TcAttachment(
                self,
                hook,
                int(opts.ptr.handle),
                int(opts.ptr.priority),
                f"{interface}{_ns_tag(ns)}",
                direction,
                netns=netns,
                created_hook=created,
            )
        except BaseException:
            netns.close()
            raise

    def attach_xdp(
        self,
        interface: str | int,
        *,
        mode: str | None = None,
        replace: bool = False,
        netns: NetnsLike | None = None,
    ) -> BpfLink | XdpAttachment:
        """Attach an XDP program to an interface (name or index).

        Without ``mode`` this creates a bpf_link (detached with the link). ``mode`` "skb"
        (generic), "driver" (native) or "hw" uses the netlink attach with that mode flag
        instead; ``replace`` allows replacing a program already attached that way.

        With ``netns`` (a path such as ``/run/netns/NAME`` or ``/proc/PID/ns/net``, an open
        fd, or an object with ``fileno()``) the interface is looked up and the program
        attached in that network namespace; detaching works from any namespace (an
        :class:`XdpAttachment` keeps the namespace for it).
        """
        return run_in(netns, lambda ns: self._attach_xdp(interface, mode, replace, ns))

    def _attach_xdp(
        self, interface: str | int, mode: str | None, replace: bool, ns: Netns | None
    ) -> BpfLink | XdpAttachment:
        ifindex = self._ifindex(interface, ns)
        desc = f"xdp:{interface}" if isinstance(interface, str) else f"xdp:if{ifindex}"
        desc += _ns_tag(ns)
        if mode is None and not replace:
            return self._link(
                progcalls.attach_xdp,
                desc,
                f"attach XDP to interface {interface}{at(ns)} failed",
                ifindex,
            )
        flags = {
            None: 0,
            "skb": XDP_FLAGS_SKB_MODE,
            "driver": XDP_FLAGS_DRV_MODE,
            "hw": XDP_FLAGS_HW_MODE,
        }.get(mode, -1)
        if flags < 0:
            raise ValueError(f"XDP mode must be 'skb', 'driver' or 'hw', not {mode!r}")
        if not replace:
            flags |= XDP_FLAGS_UPDATE_IF_NOEXIST
        fd = self.fd
        progcalls.xdp_attach(
            ifindex, fd, flags, what=f"attach XDP ({mode}) to '{interface}'{at(ns)}"
        )
        netns = keep(ns)
        try:
            return XdpAttachment(
                self, ifindex, flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST, desc, netns=netns
            )
        except BaseException:
            netns.close()
            raise

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
                progcalls.attach_iter,
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

    def attach_raw_tracepoint(self, name: str) -> BpfLink:
        return self._link(
            progcalls.attach_raw_tracepoint,
            f"raw_tracepoint:{name}",
            f"attach raw tracepoint to '{name}' failed",
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
        where = f"{binary_path}:{symbol}+{offset}" if symbol else f"{binary_path}+{offset}"
        opts = new_opts(
            "bpf_uprobe_opts",
            retprobe=bool(retprobe),
            func_name=symbol,
            bpf_cookie=cookie,
            ref_ctr_offset=ref_ctr_offset,
        )
        return self._link(
            progcalls.attach_uprobe,
            f"{kind}:{where}",
            f"attach uprobe to '{where}' failed",
            int(pid),
            cstr(binary_path),
            int(offset),
            opts.ptr,
            keep=opts,
            missing=lambda _err, log: (
                explain_uprobe(os.fsdecode(binary_path), f"symbol '{symbol}'", log)
                if symbol
                else None
            ),
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
            arr, names = progcalls.c_strings([cstr(s) for s in symbols])
            keep += [names, arr]
            fields.update(syms=arr, cnt=len(symbols))
        if cookies:
            carr = progcalls.u64_array(cookies)
            keep.append(carr)
            fields["cookies"] = carr
        opts = new_opts("bpf_uprobe_multi_opts", **fields)
        kind = "uretprobe_multi" if retprobe else "uprobe_multi"
        return self._link(
            progcalls.attach_uprobe_multi,
            f"{kind}:{binary_path}:{pattern or ','.join(symbols or [])}",
            f"attach {kind} '{binary_path}:{pattern or symbols}' failed",
            int(pid),
            cstr(binary_path),
            cstr(pattern) if pattern else None,
            opts.ptr,
            keep=(opts, keep),
            missing=lambda _err, log: explain_uprobe(
                os.fsdecode(binary_path),
                f"function matching '{pattern}'" if pattern else f"one of symbols {symbols}",
                log,
            ),
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
            progcalls.attach_usdt,
            f"usdt:{binary_path}:{provider}:{name}",
            f"attach USDT '{provider}:{name}' in '{binary_path}' failed",
            int(pid),
            cstr(binary_path),
            cstr(provider),
            cstr(name),
            opts.ptr,
            keep=opts,
            missing=lambda _err, log: explain_uprobe(
                os.fsdecode(binary_path), f"USDT probe '{provider}:{name}'", log
            ),
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
        return self._with_fd(cgroup, progcalls.attach_cgroup, "cgroup", opts.ptr, keep=opts)


# sections whose bare form (no "/target") needs an explicit attach call, and that call
_BARE_SECTIONS = {
    "kprobe": "attach_kprobe(func_name)",
    "kretprobe": "attach_kretprobe(func_name)",
    "ksyscall": "attach_ksyscall(name)",
    "kretsyscall": "attach_ksyscall(name, retprobe=True)",
    "kprobe.multi": "attach_kprobe_multi(pattern)",
    "kretprobe.multi": "attach_kprobe_multi(pattern, retprobe=True)",
    "uprobe": "attach_uprobe(binary, symbol=...)",
    "uprobe.s": "attach_uprobe(binary, symbol=...)",
    "uretprobe": "attach_uretprobe(binary, symbol=...)",
    "uretprobe.s": "attach_uretprobe(binary, symbol=...)",
    "uprobe.multi": "attach_uprobe_multi(binary, pattern)",
    "uprobe.multi.s": "attach_uprobe_multi(binary, pattern)",
    "uretprobe.multi": "attach_uprobe_multi(binary, pattern, retprobe=True)",
    "uretprobe.multi.s": "attach_uprobe_multi(binary, pattern, retprobe=True)",
    "usdt": "attach_usdt(binary, provider, name)",
    "usdt.s": "attach_usdt(binary, provider, name)",
    "tp": "attach_tracepoint(category, name)",
    "tracepoint": "attach_tracepoint(category, name)",
    "raw_tp": "attach_raw_tracepoint(name)",
    "raw_tracepoint": "attach_raw_tracepoint(name)",
}
# program types libbpf never auto-attaches, and the call that attaches them
_MANUAL_TYPES = {
    BpfProgType.XDP: "attach_xdp(interface)",
    BpfProgType.SOCKET_FILTER: "attach_socket(sock)",
    BpfProgType.SK_LOOKUP: "attach_netns(path)",
    BpfProgType.FLOW_DISSECTOR: "attach_netns(path)",
    BpfProgType.SK_SKB: "attach_sockmap(map)",
    BpfProgType.SK_MSG: "attach_sockmap(map)",
    BpfProgType.NETFILTER: "attach_netfilter(pf, hook, priority)",
    BpfProgType.PERF_EVENT: "attach_perf_event(fd)",
    BpfProgType.EXT: "attach_freplace(target, func_name)",
    BpfProgType.CGROUP_SKB: "attach_cgroup(path)",
    BpfProgType.CGROUP_SOCK: "attach_cgroup(path)",
    BpfProgType.CGROUP_SOCK_ADDR: "attach_cgroup(path)",
    BpfProgType.CGROUP_SOCKOPT: "attach_cgroup(path)",
    BpfProgType.CGROUP_SYSCTL: "attach_cgroup(path)",
    BpfProgType.CGROUP_DEVICE: "attach_cgroup(path)",
    BpfProgType.SOCK_OPS: "attach_cgroup(path)",
}


def _ns_tag(ns: Netns | None) -> str:
    """``@LABEL`` for the description of an attachment made in another namespace."""
    return f"@{ns.label}" if ns is not None else ""


def _manual_attach(section: str, prog_type: BpfProgType) -> str | None:
    """The call that attaches a program whose SEC() libbpf cannot auto-attach (None: the
    section has an auto-attach, so its EOPNOTSUPP came from the kernel)."""
    kind, _, target = section.partition("/")
    if kind in _BARE_SECTIONS:
        return None if target else _BARE_SECTIONS[kind]
    if prog_type in (BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT):
        if kind == "tcx":
            return f'attach_tcx(interface, "{target or "ingress"}")'
        if kind == "netkit":
            return "attach_netkit(interface)"
        return "attach_tc(interface, direction) or prog.attach_tcx(interface, direction)"
    return _MANUAL_TYPES.get(prog_type)
