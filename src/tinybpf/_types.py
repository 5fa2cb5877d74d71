"""Public enums, constants and small dataclasses.

Enum values come from the compiled extension (the kernel's uapi headers of the pinned
libbpf), never from literals. The enums are *open*: a value newer than this table (a map or
program type added by a later kernel) becomes a pseudo-member named ``UNKNOWN_<n>`` instead
of raising, so objects using new kernel features still load (defect W1 of the first
generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Generic, TypeVar

from ._core import lib

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "BpfAttachType",
    "BpfLinkType",
    "BpfMapType",
    "BpfProgType",
    "BtfField",
    "BtfKind",
    "BtfType",
    "MapInfo",
    "ProgramInfo",
    "RingBufferEvent",
]

BPF_ANY: int = lib.BPF_ANY
BPF_NOEXIST: int = lib.BPF_NOEXIST
BPF_EXIST: int = lib.BPF_EXIST
BPF_F_LOCK: int = lib.BPF_F_LOCK


class _OpenIntEnum(IntEnum):
    """An IntEnum that turns unknown values into ``UNKNOWN_<n>`` pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value}"
        pseudo._value_ = value
        return pseudo


class BpfMapType(_OpenIntEnum):
    """``enum bpf_map_type``.

    Example::

        counts = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 1024)
        assert obj.maps["events"].type == tinybpf.BpfMapType.RINGBUF
    """

    UNSPEC = lib.BPF_MAP_TYPE_UNSPEC
    HASH = lib.BPF_MAP_TYPE_HASH
    ARRAY = lib.BPF_MAP_TYPE_ARRAY
    PROG_ARRAY = lib.BPF_MAP_TYPE_PROG_ARRAY
    PERF_EVENT_ARRAY = lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY
    PERCPU_HASH = lib.BPF_MAP_TYPE_PERCPU_HASH
    PERCPU_ARRAY = lib.BPF_MAP_TYPE_PERCPU_ARRAY
    STACK_TRACE = lib.BPF_MAP_TYPE_STACK_TRACE
    CGROUP_ARRAY = lib.BPF_MAP_TYPE_CGROUP_ARRAY
    LRU_HASH = lib.BPF_MAP_TYPE_LRU_HASH
    LRU_PERCPU_HASH = lib.BPF_MAP_TYPE_LRU_PERCPU_HASH
    LPM_TRIE = lib.BPF_MAP_TYPE_LPM_TRIE
    ARRAY_OF_MAPS = lib.BPF_MAP_TYPE_ARRAY_OF_MAPS
    HASH_OF_MAPS = lib.BPF_MAP_TYPE_HASH_OF_MAPS
    DEVMAP = lib.BPF_MAP_TYPE_DEVMAP
    SOCKMAP = lib.BPF_MAP_TYPE_SOCKMAP
    CPUMAP = lib.BPF_MAP_TYPE_CPUMAP
    XSKMAP = lib.BPF_MAP_TYPE_XSKMAP
    SOCKHASH = lib.BPF_MAP_TYPE_SOCKHASH
    CGROUP_STORAGE = lib.BPF_MAP_TYPE_CGROUP_STORAGE
    REUSEPORT_SOCKARRAY = lib.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
    PERCPU_CGROUP_STORAGE = lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
    QUEUE = lib.BPF_MAP_TYPE_QUEUE
    STACK = lib.BPF_MAP_TYPE_STACK
    SK_STORAGE = lib.BPF_MAP_TYPE_SK_STORAGE
    DEVMAP_HASH = lib.BPF_MAP_TYPE_DEVMAP_HASH
    STRUCT_OPS = lib.BPF_MAP_TYPE_STRUCT_OPS
    RINGBUF = lib.BPF_MAP_TYPE_RINGBUF
    INODE_STORAGE = lib.BPF_MAP_TYPE_INODE_STORAGE
    TASK_STORAGE = lib.BPF_MAP_TYPE_TASK_STORAGE
    BLOOM_FILTER = lib.BPF_MAP_TYPE_BLOOM_FILTER
    USER_RINGBUF = lib.BPF_MAP_TYPE_USER_RINGBUF
    CGRP_STORAGE = lib.BPF_MAP_TYPE_CGRP_STORAGE
    ARENA = lib.BPF_MAP_TYPE_ARENA
    INSN_ARRAY = lib.BPF_MAP_TYPE_INSN_ARRAY


class BpfProgType(_OpenIntEnum):
    """``enum bpf_prog_type``.

    Example::

        if tinybpf.probe_prog_type(tinybpf.BpfProgType.XDP):
            print(obj.program("xdp_pass").type.name)   # "XDP"
    """

    UNSPEC = lib.BPF_PROG_TYPE_UNSPEC
    SOCKET_FILTER = lib.BPF_PROG_TYPE_SOCKET_FILTER
    KPROBE = lib.BPF_PROG_TYPE_KPROBE
    SCHED_CLS = lib.BPF_PROG_TYPE_SCHED_CLS
    SCHED_ACT = lib.BPF_PROG_TYPE_SCHED_ACT
    TRACEPOINT = lib.BPF_PROG_TYPE_TRACEPOINT
    XDP = lib.BPF_PROG_TYPE_XDP
    PERF_EVENT = lib.BPF_PROG_TYPE_PERF_EVENT
    CGROUP_SKB = lib.BPF_PROG_TYPE_CGROUP_SKB
    CGROUP_SOCK = lib.BPF_PROG_TYPE_CGROUP_SOCK
    LWT_IN = lib.BPF_PROG_TYPE_LWT_IN
    LWT_OUT = lib.BPF_PROG_TYPE_LWT_OUT
    LWT_XMIT = lib.BPF_PROG_TYPE_LWT_XMIT
    SOCK_OPS = lib.BPF_PROG_TYPE_SOCK_OPS
    SK_SKB = lib.BPF_PROG_TYPE_SK_SKB
    CGROUP_DEVICE = lib.BPF_PROG_TYPE_CGROUP_DEVICE
    SK_MSG = lib.BPF_PROG_TYPE_SK_MSG
    RAW_TRACEPOINT = lib.BPF_PROG_TYPE_RAW_TRACEPOINT
    CGROUP_SOCK_ADDR = lib.BPF_PROG_TYPE_CGROUP_SOCK_ADDR
    LWT_SEG6LOCAL = lib.BPF_PROG_TYPE_LWT_SEG6LOCAL
    LIRC_MODE2 = lib.BPF_PROG_TYPE_LIRC_MODE2
    SK_REUSEPORT = lib.BPF_PROG_TYPE_SK_REUSEPORT
    FLOW_DISSECTOR = lib.BPF_PROG_TYPE_FLOW_DISSECTOR
    CGROUP_SYSCTL = lib.BPF_PROG_TYPE_CGROUP_SYSCTL
    RAW_TRACEPOINT_WRITABLE = lib.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE
    CGROUP_SOCKOPT = lib.BPF_PROG_TYPE_CGROUP_SOCKOPT
    TRACING = lib.BPF_PROG_TYPE_TRACING
    STRUCT_OPS = lib.BPF_PROG_TYPE_STRUCT_OPS
    EXT = lib.BPF_PROG_TYPE_EXT
    LSM = lib.BPF_PROG_TYPE_LSM
    SK_LOOKUP = lib.BPF_PROG_TYPE_SK_LOOKUP
    SYSCALL = lib.BPF_PROG_TYPE_SYSCALL
    NETFILTER = lib.BPF_PROG_TYPE_NETFILTER


class BpfAttachType(_OpenIntEnum):
    """``enum bpf_attach_type`` (names without the ``BPF_`` prefix).

    Example::

        prog = obj.program("count_egress")   # before obj.load()
        prog.expected_attach_type = tinybpf.BpfAttachType.CGROUP_INET_EGRESS
    """

    CGROUP_INET_INGRESS = lib.BPF_CGROUP_INET_INGRESS
    CGROUP_INET_EGRESS = lib.BPF_CGROUP_INET_EGRESS
    CGROUP_INET_SOCK_CREATE = lib.BPF_CGROUP_INET_SOCK_CREATE
    CGROUP_SOCK_OPS = lib.BPF_CGROUP_SOCK_OPS
    SK_SKB_STREAM_PARSER = lib.BPF_SK_SKB_STREAM_PARSER
    SK_SKB_STREAM_VERDICT = lib.BPF_SK_SKB_STREAM_VERDICT
    CGROUP_DEVICE = lib.BPF_CGROUP_DEVICE
    SK_MSG_VERDICT = lib.BPF_SK_MSG_VERDICT
    CGROUP_INET4_BIND = lib.BPF_CGROUP_INET4_BIND
    CGROUP_INET6_BIND = lib.BPF_CGROUP_INET6_BIND
    CGROUP_INET4_CONNECT = lib.BPF_CGROUP_INET4_CONNECT
    CGROUP_INET6_CONNECT = lib.BPF_CGROUP_INET6_CONNECT
    CGROUP_INET4_POST_BIND = lib.BPF_CGROUP_INET4_POST_BIND
    CGROUP_INET6_POST_BIND = lib.BPF_CGROUP_INET6_POST_BIND
    CGROUP_UDP4_SENDMSG = lib.BPF_CGROUP_UDP4_SENDMSG
    CGROUP_UDP6_SENDMSG = lib.BPF_CGROUP_UDP6_SENDMSG
    LIRC_MODE2 = lib.BPF_LIRC_MODE2
    FLOW_DISSECTOR = lib.BPF_FLOW_DISSECTOR
    CGROUP_SYSCTL = lib.BPF_CGROUP_SYSCTL
    CGROUP_UDP4_RECVMSG = lib.BPF_CGROUP_UDP4_RECVMSG
    CGROUP_UDP6_RECVMSG = lib.BPF_CGROUP_UDP6_RECVMSG
    CGROUP_GETSOCKOPT = lib.BPF_CGROUP_GETSOCKOPT
    CGROUP_SETSOCKOPT = lib.BPF_CGROUP_SETSOCKOPT
    TRACE_RAW_TP = lib.BPF_TRACE_RAW_TP
    TRACE_FENTRY = lib.BPF_TRACE_FENTRY
    TRACE_FEXIT = lib.BPF_TRACE_FEXIT
    MODIFY_RETURN = lib.BPF_MODIFY_RETURN
    LSM_MAC = lib.BPF_LSM_MAC
    TRACE_ITER = lib.BPF_TRACE_ITER
    CGROUP_INET4_GETPEERNAME = lib.BPF_CGROUP_INET4_GETPEERNAME
    CGROUP_INET6_GETPEERNAME = lib.BPF_CGROUP_INET6_GETPEERNAME
    CGROUP_INET4_GETSOCKNAME = lib.BPF_CGROUP_INET4_GETSOCKNAME
    CGROUP_INET6_GETSOCKNAME = lib.BPF_CGROUP_INET6_GETSOCKNAME
    XDP_DEVMAP = lib.BPF_XDP_DEVMAP
    CGROUP_INET_SOCK_RELEASE = lib.BPF_CGROUP_INET_SOCK_RELEASE
    XDP_CPUMAP = lib.BPF_XDP_CPUMAP
    SK_LOOKUP = lib.BPF_SK_LOOKUP
    XDP = lib.BPF_XDP
    SK_SKB_VERDICT = lib.BPF_SK_SKB_VERDICT
    SK_REUSEPORT_SELECT = lib.BPF_SK_REUSEPORT_SELECT
    SK_REUSEPORT_SELECT_OR_MIGRATE = lib.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE
    PERF_EVENT = lib.BPF_PERF_EVENT
    TRACE_KPROBE_MULTI = lib.BPF_TRACE_KPROBE_MULTI
    LSM_CGROUP = lib.BPF_LSM_CGROUP
    STRUCT_OPS = lib.BPF_STRUCT_OPS
    NETFILTER = lib.BPF_NETFILTER
    TCX_INGRESS = lib.BPF_TCX_INGRESS
    TCX_EGRESS = lib.BPF_TCX_EGRESS
    TRACE_UPROBE_MULTI = lib.BPF_TRACE_UPROBE_MULTI
    CGROUP_UNIX_CONNECT = lib.BPF_CGROUP_UNIX_CONNECT
    CGROUP_UNIX_SENDMSG = lib.BPF_CGROUP_UNIX_SENDMSG
    CGROUP_UNIX_RECVMSG = lib.BPF_CGROUP_UNIX_RECVMSG
    CGROUP_UNIX_GETPEERNAME = lib.BPF_CGROUP_UNIX_GETPEERNAME
    CGROUP_UNIX_GETSOCKNAME = lib.BPF_CGROUP_UNIX_GETSOCKNAME
    NETKIT_PRIMARY = lib.BPF_NETKIT_PRIMARY
    NETKIT_PEER = lib.BPF_NETKIT_PEER
    TRACE_KPROBE_SESSION = lib.BPF_TRACE_KPROBE_SESSION
    TRACE_UPROBE_SESSION = lib.BPF_TRACE_UPROBE_SESSION
    TRACE_FSESSION = lib.BPF_TRACE_FSESSION


class BpfLinkType(_OpenIntEnum):
    """``enum bpf_link_type``.

    Example::

        xdp = [li for li in tinybpf.loaded_links() if li.type == tinybpf.BpfLinkType.XDP]
        print(link.info.type.name)   # e.g. "PERF_EVENT" for a kprobe link
    """

    UNSPEC = lib.BPF_LINK_TYPE_UNSPEC
    RAW_TRACEPOINT = lib.BPF_LINK_TYPE_RAW_TRACEPOINT
    TRACING = lib.BPF_LINK_TYPE_TRACING
    CGROUP = lib.BPF_LINK_TYPE_CGROUP
    ITER = lib.BPF_LINK_TYPE_ITER
    NETNS = lib.BPF_LINK_TYPE_NETNS
    XDP = lib.BPF_LINK_TYPE_XDP
    PERF_EVENT = lib.BPF_LINK_TYPE_PERF_EVENT
    KPROBE_MULTI = lib.BPF_LINK_TYPE_KPROBE_MULTI
    STRUCT_OPS = lib.BPF_LINK_TYPE_STRUCT_OPS
    NETFILTER = lib.BPF_LINK_TYPE_NETFILTER
    TCX = lib.BPF_LINK_TYPE_TCX
    UPROBE_MULTI = lib.BPF_LINK_TYPE_UPROBE_MULTI
    NETKIT = lib.BPF_LINK_TYPE_NETKIT
    SOCKMAP = lib.BPF_LINK_TYPE_SOCKMAP


class BtfKind(_OpenIntEnum):
    """BTF type kinds (``BTF_KIND_*``). Unknown kinds read as ``UNKN``.

    Example::

        tid = btf.find("task_struct", tinybpf.BtfKind.STRUCT)
        assert btf.type(tid).kind is tinybpf.BtfKind.STRUCT
    """

    UNKN = lib.BTF_KIND_UNKN
    INT = lib.BTF_KIND_INT
    PTR = lib.BTF_KIND_PTR
    ARRAY = lib.BTF_KIND_ARRAY
    STRUCT = lib.BTF_KIND_STRUCT
    UNION = lib.BTF_KIND_UNION
    ENUM = lib.BTF_KIND_ENUM
    FWD = lib.BTF_KIND_FWD
    TYPEDEF = lib.BTF_KIND_TYPEDEF
    VOLATILE = lib.BTF_KIND_VOLATILE
    CONST = lib.BTF_KIND_CONST
    RESTRICT = lib.BTF_KIND_RESTRICT
    FUNC = lib.BTF_KIND_FUNC
    FUNC_PROTO = lib.BTF_KIND_FUNC_PROTO
    VAR = lib.BTF_KIND_VAR
    DATASEC = lib.BTF_KIND_DATASEC
    FLOAT = lib.BTF_KIND_FLOAT
    DECL_TAG = lib.BTF_KIND_DECL_TAG
    TYPE_TAG = lib.BTF_KIND_TYPE_TAG
    ENUM64 = lib.BTF_KIND_ENUM64

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls.UNKN if isinstance(value, int) else None


_E = TypeVar("_E", bound=IntEnum)

# The C prefix of each enum's names: "BPF_PROG_TYPE_XDP" names BpfProgType.XDP.
_C_PREFIXES: dict[type[IntEnum], tuple[str, ...]] = {
    BpfMapType: ("BPF_MAP_TYPE_",),
    BpfProgType: ("BPF_PROG_TYPE_",),
    BpfAttachType: ("BPF_",),
    BpfLinkType: ("BPF_LINK_TYPE_",),
    BtfKind: ("BTF_KIND_",),
}


def enum_arg(cls: type[_E], value: Any, what: str, prefixes: tuple[str, ...] = ()) -> _E:
    """The member of ``cls`` that an argument names: a member, its int, or its name in any
    case, with or without the C prefix (``"xdp"``, ``"XDP"``, ``"BPF_PROG_TYPE_XDP"``).

    The one conversion every function taking an enum uses. ``prefixes`` gives the C prefixes
    of enums made at run time (from BTF); those of tinybpf's enums are known. A member of
    another enum, a bool or an unknown name raises (TypeError / ValueError naming ``what``).
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, Enum):
        # a member of another enum is accepted only when it means the same thing (the
        # kernel's own enum from BTF, e.g. bpf_prog_type.BPF_PROG_TYPE_XDP)
        same = None
        if type(value) not in _C_PREFIXES:  # another of tinybpf's enums: a mistake
            try:
                same = enum_arg(cls, value.name, what, prefixes)
            except ValueError:
                pass
        if same is None or int(same) != value.value:
            raise TypeError(f"{what} must be a {cls.__name__}, its name or int, not {value!r}")
        return same
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a {cls.__name__}, its name or int, not {value!r}")
    if isinstance(value, int):
        return cls(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{what} must be a {cls.__name__}, its name or int, not {type(value).__name__}"
        )
    prefixes = prefixes or _C_PREFIXES.get(cls, ())
    by_name = {name.upper(): member for name, member in cls.__members__.items()}
    key = value.strip().upper()
    bare = _strip(key, prefixes)
    for name in (key, bare, *(prefix + bare for prefix in prefixes)):
        if name in by_name:
            return by_name[name]
    short = sorted({_strip(n, prefixes).lower() for n in by_name})
    hint = f", with or without {' or '.join(prefixes)}" if prefixes else ""
    if len(short) <= 40:
        expected = f"expected one of {', '.join(short)} (any case{hint}) or an int"
    else:
        import difflib

        close = difflib.get_close_matches(_strip(key, prefixes).lower(), short, n=3)
        expected = f"did you mean {' or '.join(close)}?" if close else "not a known name"
    raise ValueError(f"unknown {what} {value!r}: {expected}")


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@dataclass(frozen=True)
class MapInfo:
    """Static facts about a map.

    Example::

        info = obj.maps["counts"].info
        print(info.name, info.type.name, info.key_size, info.value_size, info.max_entries)
    """

    name: str
    type: BpfMapType
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class ProgramInfo:
    """Static facts about a program.

    Example::

        info = obj.program("handle_exec").info
        print(info.name, info.section, info.type.name)   # e.g. "handle_exec" "tp/..." TRACEPOINT
    """

    name: str
    section: str
    type: BpfProgType


T = TypeVar("T")


@dataclass(frozen=True)
class RingBufferEvent(Generic[T]):
    """An event tagged with the name of the ring buffer map it came from.

    Example::

        rb = tinybpf.BpfRingBuffer(obj.maps["events"])   # iterator mode: no callback
        async for ev in rb.events():
            print(ev.map_name, ev.data)
    """

    map_name: str
    data: T


@dataclass(frozen=True)
class BtfField:
    """A member of a BTF struct or union.

    ``offset`` is in bytes; ``bit_offset`` and ``bitfield_size`` describe bitfields
    (``bitfield_size`` 0 for ordinary members). ``type`` is the resolved member type.

    Example::

        for f in obj.btf.find_struct("event").fields:
            print(f.name, f.offset, f.size, f.type.name if f.type else None)
    """

    name: str
    offset: int
    size: int
    bit_offset: int = 0
    bitfield_size: int = 0
    type: BtfType | None = None


@dataclass(frozen=True)
class BtfType:
    """A BTF type: resolved (typedefs and qualifiers followed) or as written.

    ``name`` is the resolved type's name; ``type_name`` the name as written (e.g. ``__s32``
    for a typedef). ``signed`` is set for INT and ENUM; ``elem`` and ``nelems`` for ARRAY;
    ``fields`` for STRUCT, UNION and DATASEC; ``enum_values`` for ENUM and ENUM64;
    ``ref_id`` is the type a PTR, TYPEDEF, qualifier, FUNC, VAR, DECL_TAG or FUNC_PROTO
    (its return type) refers to; ``params`` are a FUNC_PROTO's parameters (name and type);
    ``linkage`` is a FUNC's or VAR's linkage (0 static, 1 global, 2 extern);
    ``kind_flag`` the raw flag (a FWD of a union, a bitfield struct, a signed enum...);
    ``component_idx`` a DECL_TAG's member or parameter index (-1: the type itself).

    Example::

        bt = obj.btf.find_struct("event")
        print(bt.kind.name, bt.size, [f.name for f in bt.fields])
        print(bt)   # the C declaration: struct event { ... };
    """

    name: str
    kind: BtfKind
    size: int | None
    fields: tuple[BtfField, ...] | None = None
    type_id: int = 0
    type_name: str = ""
    signed: bool = False
    encoding: int = 0
    elem: BtfType | None = None
    nelems: int = 0
    enum_values: tuple[tuple[str, int], ...] | None = None
    ref_id: int = 0
    params: tuple[BtfField, ...] | None = None
    linkage: int = 0
    kind_flag: bool = False
    component_idx: int = -1

    def __str__(self) -> str:
        """The type as a C declaration (structs, unions and enums with their members)."""
        if self.kind in (BtfKind.STRUCT, BtfKind.UNION):
            kw = self.kind.name.lower()
            lines = [f"{kw} {self.name} {{" if self.name else f"{kw} {{"]
            for f in self.fields or ():
                lines.append(f"\t{_c_member(f)};")
            lines.append("};")
            return "\n".join(lines)
        if self.kind in (BtfKind.ENUM, BtfKind.ENUM64):
            body = "".join(f"\t{n} = {v},\n" for n, v in self.enum_values or ())
            return f"enum {self.name} {{\n{body}}};"
        return _c_type_name(self)


def _c_type_name(t: BtfType | None) -> str:
    if t is None:
        return "void"
    if t.kind in (BtfKind.STRUCT, BtfKind.UNION) and t.type_name == t.name:
        return f"{t.kind.name.lower()} {t.name}" if t.name else t.kind.name.lower()
    if t.kind in (BtfKind.ENUM, BtfKind.ENUM64) and t.type_name == t.name:
        return f"enum {t.name}"
    if t.kind == BtfKind.PTR:
        return "void *"
    return t.type_name or t.name or "void"


def _c_member(f: BtfField) -> str:
    t = f.type
    if t is not None and t.kind in (BtfKind.STRUCT, BtfKind.UNION) and not t.name:
        body = str(t).replace("\n", "\n\t").removesuffix(";")
        return f"{body} {f.name}" if f.name else body
    dims = ""
    while t is not None and t.kind == BtfKind.ARRAY:
        dims += f"[{t.nelems}]"
        t = t.elem
    tname = _c_type_name(t)
    sep = "" if tname.endswith("*") else " "
    bits = f": {f.bitfield_size}" if f.bitfield_size else ""
    return f"{tname}{sep}{f.name}{dims}{bits}"
