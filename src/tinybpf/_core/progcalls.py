"""Programs, attach and links: the libbpf calls of :mod:`tinybpf.attach`,
:mod:`tinybpf._program_setup` and :mod:`tinybpf.link`.

Each ``attach_*`` function attaches a program through one libbpf call and returns the
link pointer, or raises the :class:`~tinybpf.errors.BpfError` of the failure (message
``what``, errno and libbpf's log attached). ``None`` arguments are passed as NULL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._binding import NULL, call, capture_log, check_ptr, ffi, lib, new_opts, pystr

__all__ = [
    "attach",
    "attach_cgroup",
    "attach_freplace",
    "attach_iter",
    "attach_kprobe",
    "attach_kprobe_multi",
    "attach_ksyscall",
    "attach_lsm",
    "attach_netfilter",
    "attach_netkit",
    "attach_netns",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_sockmap",
    "attach_tcx",
    "attach_trace",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_uprobe_multi",
    "attach_usdt",
    "attach_xdp",
    "auto_attach",
    "autoattach",
    "autoload",
    "c_strings",
    "expected_attach_type",
    "insn_count",
    "iter_create",
    "link_detach",
    "link_fd",
    "link_info",
    "link_pin_path",
    "link_update_program",
    "log_buf",
    "log_level",
    "new_log_buf",
    "prog_fd",
    "prog_name",
    "prog_section",
    "prog_type",
    "set_attach_target",
    "set_autoattach",
    "tc_attach",
    "tc_hook_create",
    "tc_query",
    "test_run",
    "u64_array",
    "xdp_attach",
    "xdp_detach",
]

Attacher = Callable[..., Any]


def _attacher(fn: Any) -> Attacher:
    def attach_with(prog: Any, *args: Any, what: str) -> Any:
        cargs = [NULL if a is None else a for a in args]
        with capture_log() as log:
            ptr = fn(prog, *cargs)
            err = ffi.errno
        if ptr == NULL:
            ffi.errno = err  # (the log capture's own calls may have changed it)
        return check_ptr(ptr, what, log)

    return attach_with


attach = _attacher(lib.bpf_program__attach)
attach_kprobe = _attacher(lib.bpf_program__attach_kprobe_opts)
attach_kprobe_multi = _attacher(lib.bpf_program__attach_kprobe_multi_opts)
attach_ksyscall = _attacher(lib.bpf_program__attach_ksyscall)
attach_tracepoint = _attacher(lib.bpf_program__attach_tracepoint_opts)
attach_trace = _attacher(lib.bpf_program__attach_trace_opts)
attach_lsm = _attacher(lib.bpf_program__attach_lsm)
attach_freplace = _attacher(lib.bpf_program__attach_freplace)
attach_perf_event = _attacher(lib.bpf_program__attach_perf_event_opts)
attach_netns = _attacher(lib.bpf_program__attach_netns)
attach_sockmap = _attacher(lib.bpf_program__attach_sockmap)
attach_netfilter = _attacher(lib.bpf_program__attach_netfilter)
attach_tcx = _attacher(lib.bpf_program__attach_tcx)
attach_netkit = _attacher(lib.bpf_program__attach_netkit)
attach_xdp = _attacher(lib.bpf_program__attach_xdp)
attach_iter = _attacher(lib.tinybpf_attach_iter)
attach_raw_tracepoint = _attacher(lib.bpf_program__attach_raw_tracepoint)
attach_uprobe = _attacher(lib.bpf_program__attach_uprobe_opts)
attach_uprobe_multi = _attacher(lib.bpf_program__attach_uprobe_multi)
attach_usdt = _attacher(lib.bpf_program__attach_usdt)
attach_cgroup = _attacher(lib.bpf_program__attach_cgroup_opts)


def auto_attach(prog: Any, what: str) -> Any:
    """Attach from the SEC() name: the link pointer, or None when the section says no
    target (or autoattach is off)."""
    out = ffi.new("struct bpf_link **")
    if call("tinybpf_auto_attach", prog, out, what=what) == 0:
        return None
    return out[0]


def c_strings(strings: list[bytes]) -> tuple[Any, Any]:
    """A C ``const char *[]`` of ``strings``, and what must live as long as it."""
    names = [ffi.new("char[]", s) for s in strings]
    arr = ffi.new("const char *[]", names)
    return arr, names


def u64_array(values: list[int]) -> Any:
    return ffi.new("__u64[]", values)


def xdp_attach(ifindex: int, prog_fd: int, flags: int, what: str) -> None:
    call("bpf_xdp_attach", ifindex, prog_fd, flags, NULL, what=what)


def xdp_detach(ifindex: int, flags: int, opts: Any) -> int:
    return int(lib.bpf_xdp_detach(ifindex, flags, opts))


def tc_hook_create(hook: Any) -> int:
    return int(lib.bpf_tc_hook_create(hook))


def tc_attach(hook: Any, opts: Any) -> int:
    return int(lib.bpf_tc_attach(hook, opts))


def tc_query(hook: Any, opts: Any) -> int:
    return int(lib.bpf_tc_query(hook, opts))


# --- a program's setup ------------------------------------------------------------------
def prog_name(prog: Any) -> str:
    return pystr(lib.bpf_program__name(prog))


def prog_section(prog: Any) -> str:
    return pystr(lib.bpf_program__section_name(prog))


def prog_type(prog: Any) -> int:
    return int(lib.bpf_program__type(prog))


def expected_attach_type(prog: Any) -> int:
    return int(lib.bpf_program__expected_attach_type(prog))


def autoload(prog: Any) -> bool:
    return bool(lib.bpf_program__autoload(prog))


def autoattach(prog: Any) -> bool:
    return bool(lib.bpf_program__autoattach(prog))


def set_autoattach(prog: Any, value: bool) -> None:
    lib.bpf_program__set_autoattach(prog, value)


def log_level(prog: Any) -> int:
    return int(lib.bpf_program__log_level(prog))


def set_attach_target(prog: Any, fd: int, target: bytes) -> int:
    """libbpf's return (negative errno on failure); call it inside a log capture."""
    return int(lib.bpf_program__set_attach_target(prog, fd, target))


def insn_count(prog: Any) -> int:
    return int(lib.bpf_program__insn_cnt(prog))


def prog_fd(prog: Any) -> int:
    return int(lib.bpf_program__fd(prog))


def new_log_buf(size: int) -> Any:
    """A C buffer for a verifier log (kept alive by the caller while libbpf may write)."""
    return ffi.new("char[]", size)


def log_buf(prog: Any) -> str:
    """The log buffer set on the program ("" if none)."""
    size = ffi.new("size_t *")
    ptr = lib.bpf_program__log_buf(prog, size)
    return "" if ptr == NULL else ffi.string(ptr).decode("utf-8", "replace")


def test_run(
    fd: int,
    what: str,
    data: bytes,
    out_size: int,
    ctx: bytes | None,
    cout_size: int,
    **fields: Any,
) -> tuple[Any, bytes, bytes]:
    """BPF_PROG_TEST_RUN on copies: (the opts after the run, data out, ctx out)."""
    data_out = ffi.new("char[]", out_size) if out_size else NULL
    ctx_in = ffi.new("char[]", bytes(ctx)) if ctx else NULL
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
        **fields,
    )
    call("bpf_prog_test_run_opts", fd, opts.ptr, what=what)
    o = opts.ptr
    out = bytes(ffi.buffer(data_out, o.data_size_out)) if out_size else b""
    if cout_size:
        cout = bytes(ffi.buffer(ctx_out, o.ctx_size_out))
    elif ctx:
        cout = bytes(ffi.buffer(ctx_in, len(ctx)))  # written back in place (SYSCALL)
    else:
        cout = b""
    return o, out, cout


# --- links ------------------------------------------------------------------------------
def link_info(fd: int) -> Any:
    """The link's info struct (fields read by the caller)."""
    out = ffi.new("struct tinybpf_link_info *")
    call("tinybpf_link_info", fd, out, what=f"get info of link fd {fd}")
    return out


def link_fd(link: Any) -> int:
    return int(lib.bpf_link__fd(link))


def link_detach(link: Any) -> int:
    return int(lib.bpf_link__detach(link))


def link_pin_path(link: Any) -> str:
    return pystr(lib.bpf_link__pin_path(link))


def link_update_program(link: Any, prog: Any) -> int:
    return int(lib.bpf_link__update_program(link, prog))


def iter_create(link_fd: int) -> int:
    return int(lib.bpf_iter_create(link_fd))
