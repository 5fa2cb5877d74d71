"""BpfLink: an attachment of a program to a hook.

A link detaches its program when it is destroyed (``destroy()``, ``with``, or garbage
collection). Keep a reference to the link for as long as the program should stay attached,
or pin it (a pinned link survives the process). A link or attachment collected while
attached warns with :class:`~tinybpf.LinkDetachedWarning`, which Python shows by default.
"""

from __future__ import annotations

import errno as _errno
import logging
import operator
import os
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._core import (
    call,
    call_ptr,
    capture_log,
    check_int,
    cstr,
    errnos,
    fd_kind,
    new_opts,
    progcalls,
    pystr,
)
from ._core.consts_b import BPF_TC_EGRESS, BPF_TC_INGRESS, SO_DETACH_BPF, XDP_FLAGS_REPLACE
from ._core.owner import Borrower, Owner, borrow, unguarded
from ._netns import Netns
from ._pin import check_pin_path
from ._types import BpfAttachType, BpfLinkType
from .errors import BpfClosedError, BpfError, BpfNotSupportedError, LinkDetachedWarning

if TYPE_CHECKING:
    import socket

    from ._protocols import ProgramLike

__all__ = [
    "BpfLink",
    "IterLink",
    "LinkInfo",
    "SocketFilter",
    "TcAttachment",
    "XdpAttachment",
    "open_pinned_link",
]


@dataclass(frozen=True)
class LinkInfo:
    """The kernel's view of a link. Target fields are set for the link types that have them.

    Example::

        info = link.info
        print(info.id, info.type.name, info.prog_id, info.attach_type)
    """

    id: int
    type: BpfLinkType
    prog_id: int
    attach_type: BpfAttachType | None = None
    ifindex: int = 0
    cgroup_id: int = 0
    netns_ino: int = 0
    map_id: int = 0
    target_name: str = ""
    pf: int = 0
    hooknum: int = 0
    priority: int = 0


def link_info_by_fd(fd: int) -> LinkInfo:
    out = progcalls.link_info(fd)
    ltype = BpfLinkType(out.type)
    with_attach = ltype in (
        BpfLinkType.TRACING,
        BpfLinkType.CGROUP,
        BpfLinkType.NETNS,
        BpfLinkType.TCX,
        BpfLinkType.NETKIT,
        BpfLinkType.SOCKMAP,
    )
    return LinkInfo(
        id=int(out.id),
        type=ltype,
        prog_id=int(out.prog_id),
        attach_type=BpfAttachType(out.attach_type) if with_attach else None,
        ifindex=int(out.ifindex),
        cgroup_id=int(out.cgroup_id),
        netns_ino=int(out.netns_ino),
        map_id=int(out.map_id),
        target_name=pystr(out.target_name),
        pf=int(out.pf),
        hooknum=int(out.hooknum),
        priority=int(out.priority),
    )


def _destroy_link(ptr: Any, description: str) -> None:
    call("bpf_link__destroy", ptr, what=f"destroy link ({description})")


class BpfLink(Borrower):
    """An attached program. ``destroy()`` detaches it; so does garbage collection.

    A link may be used from several threads: ``destroy()`` waits for the calls in flight
    on it (from a signal handler inside one of its calls, the link is freed when that call
    returns).

    Example::

        with prog.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
            ...  # attached here
        # detached here
    """

    # (see tinybpf._core.owner.Borrower)
    _handles = frozenset({"fd"})

    def __init__(
        self, link_ptr: Any, description: str = "", program: ProgramLike | None = None
    ) -> None:
        self._guard = Owner()
        self._ptr = link_ptr
        self._description = description
        # The program (and through it the object) stays alive as long as the link.
        self._program = program
        self._opened_from_pin = False

    @property
    def description(self) -> str:
        return self._description

    @property
    def program(self) -> ProgramLike | None:
        """The program this link attaches (None for links opened from a pin)."""
        return self._program

    @property
    def fd(self) -> int:
        """The link's file descriptor, or -1 once destroyed."""
        ptr = self._ptr
        if ptr is None:
            return -1
        return progcalls.link_fd(ptr)

    @property
    def destroyed(self) -> bool:
        return self._ptr is None

    @property
    def closed(self) -> bool:
        """Whether the link was closed (destroyed)."""
        return self._ptr is None

    def close(self) -> None:
        """Free the link, like every handle's ``close()``: the same as :meth:`destroy` (the
        first generation's name, kept as an alias)."""
        self.destroy()

    def _lp(self) -> Any:
        ptr = self._ptr  # one read: destroy() (from a signal handler) may clear it
        if ptr is None:
            raise BpfClosedError(f"link ({self._description}) is destroyed")
        if not self._guard.held():
            raise unguarded("BpfLink._lp()")
        return ptr

    def destroy(self) -> None:
        """Free the link: detaches the program, unless the link is pinned (a pinned link
        stays attached until its pin is removed). Idempotent."""
        g = self.__dict__.get("_guard")
        if g is None:  # a half-built link
            return
        with g.lock:
            ptr = self._ptr
            if ptr is None:
                return
            self._ptr = None
            g.release(lambda: _destroy_link(ptr, self._description))

    def detach(self) -> None:
        """Detach the program now, even if the link is pinned, then free the link.

        Links of perf-event based attachments (tracepoints, kprobes, uprobes) cannot be
        detached while pinned: that raises ``BpfNotSupportedError``; unpin them and destroy
        the last handle instead.
        """
        ptr = self._lp()
        with capture_log() as log:
            ret = progcalls.link_detach(ptr)
        if ret < 0:
            if (
                errnos.failed_with(ret, errnos.OPNOTSUPP)
                and not self.pin_path
                and not self._opened_from_pin
            ):
                pass  # no separate detach for this link type: destroying it detaches
            else:
                check_int(ret, f"detach link ({self._description}) failed", log)
        self.destroy()

    def pin(self, path: str) -> None:
        """Pin the link in a BPF filesystem: it then outlives this process."""
        p = self._lp()
        call(
            "bpf_link__pin",
            p,
            cstr(check_pin_path(path, f"pin link ({self._description}) to '{path}'")),
            what=f"pin link ({self._description}) to '{path}'",
        )

    def unpin(self) -> None:
        p = self._lp()
        call("bpf_link__unpin", p, what=f"unpin link ({self._description})")

    @property
    def pin_path(self) -> str | None:
        ptr = self._ptr
        if ptr is None:
            return None
        return progcalls.link_pin_path(ptr) or None

    def update_program(self, program: ProgramLike) -> None:
        """Atomically replace the attached program with ``program``."""
        p = self._lp()
        with capture_log() as log, borrow(program._guard):
            ret = progcalls.link_update_program(p, program._p())
        check_int(ret, f"update program of link ({self._description}) failed", log)
        self._program = program

    @property
    def info(self) -> LinkInfo:
        """The same as :meth:`kernel_info` (a property of the first release, kept)."""
        return self.kernel_info()

    def kernel_info(self) -> LinkInfo:
        """Kernel information: link id and type, program id, attach target (a syscall).

        Raises ``BpfNotSupportedError`` when the attachment has no kernel BPF link to
        describe: older kernels attach some kinds another way (perf events through an
        ioctl before Linux 5.15), and libbpf falls back to that."""
        fd = self.fd if self._ptr is not None else -1
        if fd >= 0 and fd_kind(fd) != "link":
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = "?"
            raise BpfNotSupportedError(
                f"{self._description}: this kernel made no BPF link for it (libbpf attached "
                f"it without one; its fd is {target}), so there is no link info",
                _errno.EOPNOTSUPP,
            )
        return link_info_by_fd(fd)

    def __enter__(self) -> BpfLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) is None:
            return
        if self.pin_path:
            self.destroy()  # pinned: the kernel link stays, only our handle goes
            return
        try:
            warnings.warn(
                f"BpfLink ({self._description}) was garbage collected while attached; the "
                "program has been detached. Keep a reference to the link (or use 'with') "
                "for as long as it should stay attached.",
                LinkDetachedWarning,
                stacklevel=2,
            )
            self.destroy()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<BpfLink destroyed ({self._description})>"
        return f"<BpfLink fd={self.fd} ({self._description})>"


def open_pinned_link(path: str) -> BpfLink:
    """Open a link pinned in a BPF filesystem (the program stays attached while pinned).

    ``destroy()`` only closes this handle; ``detach()`` detaches the program; ``unpin()``
    removes the pin.

    Example::

        link = tinybpf.open_pinned_link("/sys/fs/bpf/my_link")
        print(link.info.prog_id)
        link.unpin()
        link.destroy()   # the last reference: the program is detached
    """
    fd = int(call("bpf_obj_get", cstr(path), what=f"open pinned link '{path}'"))
    kind = fd_kind(fd)
    os.close(fd)
    if kind != "link":
        raise BpfError(
            f"open pinned link '{path}' failed: it is a {kind or 'non-BPF'} object, not a link",
            _errno.EINVAL,
        )
    ptr = call_ptr("bpf_link__open", cstr(path), what=f"open pinned link '{path}'")
    link = BpfLink(ptr, f"pinned:{path}")
    link._opened_from_pin = True
    return link


class _Attachment:
    """Shared shape of attachments that are not bpf_links (context manager, GC detach)."""

    _description = ""

    def destroy(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Detach the program now, like every handle's ``close()`` (the same as
        ``destroy()``). Idempotent."""
        self.destroy()

    @property
    def closed(self) -> bool:
        """Whether the program was detached through this attachment."""
        return self.destroyed

    def detach(self) -> None:
        """Detach the program now (the same as ``destroy()``). Idempotent."""
        self.destroy()

    @property
    def destroyed(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        try:
            if self.destroyed:
                return
        except Exception:
            return  # half built
        try:
            warnings.warn(
                f"{type(self).__name__} ({self._description}) was garbage collected "
                "while attached; the program has been detached. Keep a reference to it "
                "(or use 'with') for as long as it should stay attached.",
                LinkDetachedWarning,
                stacklevel=2,
            )
        finally:
            try:
                self.destroy()
            except Exception as e:
                # nobody can catch an error raised here: say it at error level
                logging.getLogger(__package__).error(
                    "destroying %s (%s) at garbage collection failed: %s",
                    type(self).__name__,
                    self._description,
                    e,
                )

    def __repr__(self) -> str:
        state = "destroyed" if self.destroyed else "attached"
        return f"<{type(self).__name__} {state} ({self._description})>"


# clsact qdiscs this process attached filters to: (netns inode, ifindex) -> [number of live
# attachments, whether tinybpf created the qdisc]. A qdisc created here is removed with the
# last attachment; one that existed before is left alone.
_tc_hooks: dict[tuple[int, int], list[int]] = {}
_tc_lock = threading.Lock()


def tc_hook_in_use(netns_ino: int, ifindex: int) -> bool:
    """Whether attachments of this process use the clsact qdisc of that interface."""
    with _tc_lock:
        use = _tc_hooks.get((netns_ino, ifindex))
        return use is not None and use[0] > 0


def destroy_tc_hook(ifindex: int) -> None:
    """Remove the clsact qdisc of an interface (in the calling thread's namespace), with
    its filters; a qdisc or interface already gone is no error."""
    hook = new_opts("bpf_tc_hook", ifindex=ifindex, attach_point=BPF_TC_INGRESS | BPF_TC_EGRESS)
    call(
        "bpf_tc_hook_destroy",
        hook.ptr,
        what=f"remove clsact qdisc of interface {ifindex}",
        tolerate=errnos.GONE_OR_INVALID,
    )


class TcAttachment(_Attachment):
    """A TC filter attached through the clsact qdisc (``BpfProgram.attach_tc``).

    ``destroy()`` removes the filter if it still runs this program (in the namespace it was
    attached in); a filter replaced or removed meanwhile is left alone. When the clsact
    qdisc was created by ``attach_tc`` and this is the last attachment of the process on
    that interface, the qdisc is removed too (``created_hook`` says whether it was).

    Example::

        with prog.attach_tc("eth0", "egress") as tc:
            print(tc.handle, tc.priority)
    """

    def __init__(
        self,
        program: ProgramLike,
        hook: Any,
        handle: int,
        priority: int,
        interface: str | int,
        direction: str,
        *,
        netns: Netns | None = None,
        created_hook: bool = False,
    ) -> None:
        self._done = True
        self._netns = netns if netns is not None else Netns.of_thread()
        self._program = program
        self._hook = hook
        self.handle = handle
        self.priority = priority
        self._description = f"tc:{interface}:{direction}"
        self._prog_id = program.kernel_info().id
        self.created_hook = created_hook
        self._key = (self._netns.ino, int(hook.ptr.ifindex))
        with _tc_lock:
            use = _tc_hooks.setdefault(self._key, [0, 0])
            use[0] += 1
            if created_hook:
                use[1] = 1
        self._done = False

    @property
    def destroyed(self) -> bool:
        return self._done

    def _detach(self) -> None:
        try:
            self._detach_filter()
        finally:
            with _tc_lock:
                use = _tc_hooks.get(self._key)
                last = use is not None and use[0] <= 1
                remove = last and use is not None and use[1] == 1
                if use is not None:
                    use[0] -= 1
                    if last:
                        del _tc_hooks[self._key]
        if remove:
            destroy_tc_hook(self._key[1])

    def _detach_filter(self) -> None:
        query = new_opts("bpf_tc_opts", handle=self.handle, priority=self.priority)
        if progcalls.tc_query(self._hook.ptr, query.ptr) < 0:
            return  # the filter (or the interface) is gone
        if int(query.ptr.prog_id) != self._prog_id:
            return  # replaced by someone else: not ours to remove
        opts = new_opts("bpf_tc_opts", handle=self.handle, priority=self.priority)
        call(
            "bpf_tc_detach",
            self._hook.ptr,
            opts.ptr,
            what=f"detach {self._description}",
            tolerate=errnos.GONE,
        )

    def destroy(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._netns.run(self._detach)
        finally:
            self._netns.close()


class XdpAttachment(_Attachment):
    """An XDP program attached with a mode flag through netlink (``attach_xdp(mode=...)``).

    ``destroy()`` detaches it only if this program is still the one attached (in the
    namespace it was attached in); a program that replaced it is left alone.

    Example::

        att = prog.attach_xdp("eth0", mode="skb")
        ...
        att.detach()
    """

    def __init__(
        self,
        program: ProgramLike,
        ifindex: int,
        flags: int,
        description: str,
        *,
        netns: Netns | None = None,
    ) -> None:
        self._program = program
        self._ifindex = ifindex
        self._flags = flags
        self._description = f"{description} flags={flags:#x}"
        self._prog_fd = os.dup(program.fd)  # stays valid after the object is closed
        self._netns = netns if netns is not None else Netns.of_thread()
        self._done = False

    @property
    def destroyed(self) -> bool:
        return self._done

    def _detach(self) -> None:
        opts = new_opts("bpf_xdp_attach_opts", old_prog_fd=self._prog_fd)
        with capture_log() as log:
            ret = progcalls.xdp_detach(self._ifindex, self._flags | XDP_FLAGS_REPLACE, opts.ptr)
        # EEXIST: another program replaced ours; ENOENT/ENODEV: interface or program gone
        check_int(ret, f"detach {self._description} failed", log, errnos.EXISTS_OR_GONE)

    def destroy(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._netns.run(self._detach)
        finally:
            self._netns.close()
            fd, self._prog_fd = self._prog_fd, -1
            if fd >= 0:
                os.close(fd)


class SocketFilter(_Attachment):
    """A socket filter program attached to a socket (``attach_socket``).

    Example::

        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))   # ETH_P_ALL
        with prog.attach_socket(sock):
            frame = sock.recv(2048)
    """

    def __init__(self, program: ProgramLike, sock: socket.socket, owned: bool) -> None:
        self._program = program
        self._sock = sock
        self._owned = owned
        self._description = f"socket:fd{sock.fileno()}"
        self._done = False

    @property
    def destroyed(self) -> bool:
        return self._done

    def destroy(self) -> None:
        if self._done:
            return
        self._done = True
        import socket

        try:
            if self._sock.fileno() >= 0:
                self._sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
        except OSError:
            pass  # the socket was closed: the filter went with it
        finally:
            if self._owned:
                self._sock.close()


class IterLink(BpfLink):
    """A BPF iterator link. Each :meth:`read` runs the iterator once and returns its output.

    Example::

        with prog.attach_iter() as it:
            print(it.read_text())
    """

    def __init__(self, link: BpfLink) -> None:
        super().__init__(link._ptr, link._description, link._program)
        link._ptr = None  # ownership moved here

    def read(self, chunk: int = 1 << 16) -> bytes:
        """Run the iterator and return everything it wrote (read ``chunk`` bytes at a time)."""
        if operator.index(chunk) < 1:
            raise ValueError(f"chunk must be a positive number of bytes, got {chunk}")
        fd = self._iter_fd()
        if fd < 0:
            check_int(fd, f"create iterator ({self._description}) failed")
        parts = []
        try:
            while True:
                data = os.read(fd, chunk)
                if not data:
                    break
                parts.append(data)
        finally:
            os.close(fd)
        return b"".join(parts)

    def _iter_fd(self) -> int:
        return progcalls.iter_create(self.fd if self._ptr is not None else -1)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read().decode(encoding, "replace")
