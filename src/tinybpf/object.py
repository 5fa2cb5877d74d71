"""BpfObject: an opened (and usually loaded) BPF object file, with its programs and maps."""

from __future__ import annotations

import errno as _errno
import os
import sys
import warnings
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._collections import MapCollection, ProgramCollection, _Wrappers
from ._core import (
    capture_log,
    check_int,
    cstr,
    errnos,
    new_opts,
    objcalls,
)
from ._core.owner import Borrower, Owner, unguarded
from ._load_errors import (
    _MISSING_ERRNOS,
    _check_custom_btf,
    _diagnosed_eperm,
    _open_failed,
    _programs_of,
    _raise_missing,
    _verifier_error,
)
from ._map_handle import _Shared
from .btf import Btf, validate_python_type
from .errors import (
    BpfClosedError,
    BpfError,
    BpfPermissionError,
    BpfPhaseError,
)
from .globals import GlobalVariables, _Layout, globals_layout
from .link import BpfLink
from .map import BpfMap
from .program import BpfProgram
from .token import TokenPermissionError, check_token_for_load

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["BpfObject", "MapCollection", "ProgramCollection", "load", "open_object"]


class BpfObject(Borrower):
    """A BPF object file opened by :func:`tinybpf.open` or :func:`tinybpf.load`.

    Use it as a context manager, or call :meth:`close`. Links stay attached after the
    object is closed, until they are destroyed.

    Example::

        with tinybpf.load("prog.bpf.o") as obj:
            link = obj.program("handle").attach()
            print(obj.maps["counts"][0])
    """

    # returns a raw program/map pointer (see tinybpf._core.owner.Borrower)
    _handles = frozenset({"_find"})

    # Defaults most objects never change, as class attributes: opening, loading and closing
    # is benchmarked against C, and every attribute set there costs (docs/performance.md).
    _ptr: Any = None
    _closed = False
    _loaded = False
    _load_failed = False  # libbpf's load ran and failed: no second load, .rodata frozen
    _index: Any = b"\x000\x00"  # tinybpf_object_index() in ffi_build/shim.c; see _decode_index
    _decoded: tuple[str, _Wrappers[BpfProgram], _Wrappers[BpfMap[Any, Any]]] | None = None
    _types: Mapping[str, type] = MappingProxyType({})  # register_type(): dicts of its own
    _names: Mapping[type, str] = MappingProxyType({})
    _btf: Btf | None = None
    _btf_resolved = False
    _keep: Any = None
    _log_bufs: dict[str, Any] | None = None  # verifier log buffers of the programs
    # what wrappers built, for the next wrapper of the same name (they are held weakly)
    _found: dict[tuple[Any, str], Any] | None = None  # libbpf handles by (kind, name)
    _map_shared: dict[str, _Shared] | None = None  # per map: codecs, fast-path state
    _globals: Any = None  # the layout of the global variables (see tinybpf.globals)
    _views: weakref.WeakSet[BpfMap[Any, Any]] | None = None  # typed() views
    # fds handed to libbpf to keep until load (set_inner_map, set_attach_target): our dups,
    # closed with the object, whatever happened to the wrappers that set them
    _kept_fds: dict[str, int] | None = None

    _links: dict[str, BpfLink] | None = None  # attach_all(): detached at close()
    _skipped: Mapping[str, str] = MappingProxyType({})
    _failed_logs: Mapping[str, str] = MappingProxyType({})  # verifier logs of a failed load

    def __init__(
        self,
        obj_ptr: Any,
        path: str | os.PathLike[str],
        *,
        loaded: bool = True,
        index: bytes | None = None,
    ) -> None:
        # Ownership of obj_ptr moves here first, so a failure below frees it exactly once.
        self._guard = Owner()  # see tinybpf._guard
        self._ptr = obj_ptr
        self._path = path if isinstance(path, str) else os.fspath(path)
        if loaded:
            self._loaded = True
        if index is None:
            try:
                index = _object_index(obj_ptr)
            except BaseException:
                self.close()
                raise
        self._index = index

    def _keeping(self, opts: Any) -> BpfObject:
        self._keep = opts  # what the open options point to lives as long as the object
        return self

    def _decode_index(self) -> tuple[str, _Wrappers[BpfProgram], _Wrappers[BpfMap[Any, Any]]]:
        d = self._decoded
        if d is None:
            # tinybpf_object_index(): NUL-terminated name, program count, programs, maps;
            # bytes, or still in the result struct of the open call
            idx = self._index
            if not isinstance(idx, bytes):
                idx = objcalls.index_bytes(idx)
            name, count, *names = idx.decode("utf-8", "replace").split("\0")[:-1]
            n = int(count)
            d = self._decoded = (
                name or _stem(self._path),
                _Wrappers(names[:n], BpfObject._new_program, self),
                _Wrappers(names[n:], BpfObject._new_map, self),
            )
        return d

    @property
    def _name(self) -> str:
        return self._decode_index()[0]

    @property
    def _programs(self) -> _Wrappers[BpfProgram]:
        return self._decode_index()[1]

    @property
    def _maps(self) -> _Wrappers[BpfMap[Any, Any]]:
        return self._decode_index()[2]

    def _new_program(self, name: str) -> BpfProgram:
        if self._closed:  # never read a freed object: a wrapper whose every use raises
            return BpfProgram.closed_stub(name, self)
        return BpfProgram(self._find("prog", name), self)

    def _new_map(self, name: str) -> BpfMap[Any, Any]:
        if self._closed:
            return BpfMap(None, self, name=name)
        shared = self._map_shared
        if shared is None:
            shared = self._map_shared = {}
        state = shared.get(name)
        if state is None:
            state = shared[name] = _Shared()
        return BpfMap(
            self._find("map", name),
            self,
            name=name,
            shared=state,
        )

    def _find(self, kind: str, name: str) -> Any:
        """The libbpf handle (``kind`` "prog" or "map") whose name reads as ``name`` (names
        are decoded the way the index decoded them, so even a malformed object's odd names
        are found)."""
        found = self._found
        if found is None:
            found = self._found = {}
        p = found.get((kind, name))
        if p is not None:
            return p
        p = self._find_slow(kind, name)
        found[(kind, name)] = p
        return p

    def _find_slow(self, kind: str, name: str) -> Any:
        p = objcalls.find(kind, self._p(), name)
        if p is None:
            raise BpfError(f"'{name}' is not in object '{self._name}' any more", _errno.ENOENT)
        return p

    # --- phases -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BpfClosedError("Cannot use BpfObject after it is closed")

    def _p(self) -> Any:
        ptr = self._ptr  # read first: a close (from a signal handler) clears it after
        if self._closed:  # setting _closed, and frees it only after this borrow
            raise BpfClosedError("Cannot use BpfObject after it is closed")
        if not self._guard.held():
            raise unguarded("BpfObject._p()")
        return ptr

    def load(self) -> BpfObject:
        """Load every program (with autoload on) and create the maps. Returns self."""
        p = self._p()
        if self._loaded:
            raise BpfPhaseError(f"object '{self._name}' is already loaded")
        if self._load_failed:
            raise BpfPhaseError(
                f"object '{self._name}' failed to load and cannot be loaded again; open it again"
            )
        with capture_log() as log:
            ret = objcalls.load(p)
        if ret < 0:
            # libbpf never loads an object twice, and it may have created the maps and
            # remapped .rodata read-only before the verifier said no
            self._load_failed = True
            own = {n: self._programs[n]._own_log() for n in self._log_bufs or ()}
            err = _verifier_error(f"load '{self._path}' failed", -ret, log, own.get)
            if err is not None:
                self._failed_logs = {err.program: err.log}
                raise err
            check_token_for_load(self._keep, f"load '{self._path}' failed", -ret, log)
        try:
            check_int(ret, f"load '{self._path}' failed", log)
        except BpfPermissionError as e:
            raise _diagnosed_eperm(e, self._load_set()) from None
        except BpfError as e:
            if errnos.is_(e.errno, _MISSING_ERRNOS):
                _raise_missing(_programs_of(self), self._path, e)
            raise
        self._loaded = True
        for state in (self._map_shared or {}).values():
            state.reset()
        for bmap in self._maps.created():
            bmap._reset_codecs()
        return self

    def _load_set(self) -> dict[str, tuple[int, str]]:
        """name -> (type, section) of the programs load() loads (autoload on)."""
        return {
            name: (int(prog.type), prog.section)
            for name, prog in self._programs.items()
            if prog.autoload
        }

    # --- properties ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> Path:
        from pathlib import Path

        return Path(self._path)

    @property
    def programs(self) -> ProgramCollection:
        return ProgramCollection(self._programs, self)

    @property
    def maps(self) -> MapCollection:
        return MapCollection(self._maps, self)

    def program(self, name: str) -> BpfProgram:
        try:
            return self._programs[name]
        except KeyError:
            avail = ", ".join(self._programs) or "(none)"
            raise KeyError(f"Program '{name}' not found. Available programs: {avail}") from None

    def map(self, name: str) -> BpfMap[Any, Any]:
        try:
            return self._maps[name]
        except KeyError:
            avail = ", ".join(self._maps) or "(none)"
            raise KeyError(f"Map '{name}' not found. Available maps: {avail}") from None

    @property
    def globals(self) -> GlobalVariables:
        """Global variables by name, typed from BTF (see :mod:`tinybpf.globals`)."""
        self._p()
        return GlobalVariables(self)

    def _globals_layout(self) -> tuple[dict[str, _Layout], dict[str, _Layout]]:
        layout: tuple[dict[str, _Layout], dict[str, _Layout]] | None = self._globals
        if layout is None:
            self._p()
            layout = self._globals = globals_layout(self)
        return layout

    def _layout_changed(self) -> None:
        """A map's value size changed before load: libbpf rewrote the BTF of a resized data
        section, so what was read from it is stale."""
        self._globals = None
        if self._btf is not None:
            self._btf._forget()

    # --- attach -------------------------------------------------------------------------
    def attach_all(self) -> dict[str, BpfLink]:
        """Attach every loaded program whose section says where (libbpf's auto-attach, as
        a libbpf skeleton's ``attach()``): tracepoints, raw tracepoints, kprobes and
        ksyscalls with a function, fentry/fexit, LSM, iterators, uprobes and USDTs with a
        binary, ...

        Returns ``{program name: link}`` of the programs attached by this call. The links
        are kept in :attr:`links` and **detached by** :meth:`close`. Programs that need a
        target (XDP, tc/tcx, cgroup, a ``SEC("uprobe")`` without a binary...), that were
        not loaded (autoload off) or whose ``autoattach`` is off are skipped, not an
        error: :attr:`skipped_programs` maps their names to the reason. Programs already
        in :attr:`links` are left as they are, so a second call attaches only what is
        new. If one attach fails, the links made by this call are destroyed and the
        error (naming the program) is raised.

        Example::

            with tinybpf.load("prog.bpf.o") as obj:
                obj.attach_all()
                print(obj.skipped_programs)   # e.g. {'xdp_pass': 'an XDP program needs ...'}
                ...                           # attached until obj.close()
        """
        self._p()
        if not self._loaded:
            raise BpfPhaseError(f"cannot attach programs of '{self._name}' before load()")
        links = self._links
        if links is None:
            links = self._links = {}
        made: dict[str, BpfLink] = {}
        skipped: dict[str, str] = {}
        try:
            for name in self._programs:
                if name in links:
                    continue
                prog = self._programs[name]
                if not prog.autoload or not prog.autoattach:
                    skipped[name] = prog._skip_reason()
                    continue
                link = prog._auto_attach()
                if link is None:
                    skipped[name] = prog._skip_reason()
                else:
                    made[name] = link
        except BaseException:
            for link in made.values():
                link.destroy()
            raise
        links.update(made)
        self._skipped = MappingProxyType(skipped)
        return made

    @property
    def links(self) -> Mapping[str, BpfLink]:
        """The links :meth:`attach_all` made, by program name (detached by :meth:`close`)."""
        return MappingProxyType(self._links or {})

    @property
    def skipped_programs(self) -> Mapping[str, str]:
        """Programs the last :meth:`attach_all` did not attach, with the reason."""
        return self._skipped

    # --- BTF ----------------------------------------------------------------------------
    def _btf_model(self) -> Btf | None:
        p = self._p()
        if not self._btf_resolved:
            ptr = objcalls.object_btf(p)
            ref = weakref.ref(self)  # the object holds its Btf: no cycle back to it
            self._btf = (
                None
                if ptr is None
                else Btf(
                    ptr,
                    owned=False,
                    is_open=lambda: (o := ref()) is not None and not o._closed,
                    description=self._name,
                    guard=self._guard,
                )
            )
            self._btf_resolved = True
        return self._btf

    @property
    def btf(self) -> Btf | None:
        """The object's BTF (None when the object has none)."""
        return self._btf_model()

    def _require_btf(self, what: str) -> Btf:
        btf = self._btf_model()
        if btf is None:
            raise BpfError(f"Cannot {what}: object '{self._name}' has no BTF information")
        return btf

    def register_type(
        self, btf_name: str, python_type: type, validate_field_names: bool = True
    ) -> None:
        """Associate a Python type with a BTF struct/union/typedef name (validated)."""
        btf = self._require_btf(f"register type '{btf_name}'")
        existing = self._types.get(btf_name)
        if existing is python_type:
            return
        if existing is not None:
            raise BpfError(
                f"BTF name '{btf_name}' is already registered to {existing.__name__}; "
                f"cannot register {python_type.__name__}"
            )
        other = self._names.get(python_type)
        if other is not None:
            raise BpfError(
                f"Type {python_type.__name__} is already registered as BTF struct '{other}'"
            )
        try:
            bt = btf.find_struct(btf_name)
        except KeyError:
            raise BpfError(
                f"BTF struct '{btf_name}' not found in object '{self._name}'. If the struct "
                f"is only used locally, keep it in BTF with an anchor: "
                f"struct {btf_name} _{btf_name}_btf __attribute__((unused));"
            ) from None
        validate_python_type(python_type, bt, validate_field_names, btf_name)
        if "_types" not in self.__dict__:
            self._types, self._names = {}, {}
        self._types[btf_name] = python_type  # type: ignore[index]
        self._names[python_type] = btf_name  # type: ignore[index]

    def lookup_type(self, btf_name: str) -> type | None:
        return self._types.get(btf_name)

    def lookup_btf_name(self, python_type: type) -> str | None:
        return self._names.get(python_type)

    def _validate_event_type(
        self, event_type: Any, validate_btf_struct: str | None, validate_field_names: bool
    ) -> None:
        """Validation precedence of buffer event types (explicit name, then registry)."""
        if event_type is bytes or event_type is None:
            return
        registered = self._names.get(event_type)
        if validate_btf_struct is not None:
            if registered is not None and registered != validate_btf_struct:
                raise BpfError(
                    f"Type '{event_type.__name__}' is registered as BTF struct '{registered}', "
                    f"but validate_btf_struct='{validate_btf_struct}' was specified"
                )
            btf = self._btf_model()
            if btf is None:
                raise BpfError(
                    f"Cannot validate against BTF struct '{validate_btf_struct}': "
                    "no BTF information available"
                )
            try:
                bt = btf.find_struct(validate_btf_struct)
            except KeyError:
                raise BpfError(
                    f"BTF struct '{validate_btf_struct}' not found in BTF of '{self._name}'"
                ) from None
            validate_python_type(event_type, bt, validate_field_names, validate_btf_struct)
        elif registered is not None:
            btf = self._btf_model()
            if btf is None:
                return
            try:
                bt = btf.find_struct(registered)
            except KeyError:
                return
            validate_python_type(event_type, bt, validate_field_names, registered)

    # --- REPL ---------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """``obj.<name>``: a program, then a map, then a global variable of that name."""
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(type(self), name, None)
        if isinstance(attr, property):  # its getter raised AttributeError: show that one
            return attr.__get__(self)
        d = self.__dict__
        if "_guard" not in d:  # a half-built object (its __init__ failed)
            raise AttributeError(name)
        _, programs, maps = self._decode_index()
        if name in programs:
            return programs[name]
        if name in maps:
            return maps[name]
        if not self._closed:
            g = self.globals
            if name in g:
                return g[name]
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute, program, map or global "
            f"variable '{name}'"
        )

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(n for n in self._programs if n.isidentifier())
        names.update(n for n in self._maps if n.isidentifier())
        if not self._closed:
            try:
                names.update(n for n in self.globals if n.isidentifier())
            except BpfError:
                pass
        return sorted(names)

    # --- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Free the object, its programs and maps. Idempotent. The links of
        :meth:`attach_all` are detached; links made with ``prog.attach*()`` stay attached
        until they are destroyed.

        Called from another thread, it waits for the calls in flight on this object. Called
        while a call of the same thread is in flight (a signal handler, a conversion hook),
        the object is closed at once and freed when that call returns."""
        g = self._guard
        with g.lock:  # serialised with the borrows (tinybpf._core.owner)
            if self._closed:
                return
            links, self._links = self._links, None
            failed: BaseException | None = None
            for link in (links or {}).values():  # attach_all()'s links detach here
                try:
                    link.destroy()
                except BpfError as e:  # the object is still freed; the first error raised
                    failed = failed or e
            d = self._decoded
            if d is not None:
                for bmap in d[2].created():
                    bmap._snapshot()
                for view in self._views or ():
                    view._snapshot()
                for prog in d[1].created():
                    prog._snapshot()
            self._closed = True
            # element operations hold no lock: revoke their fd handles (waits for the
            # calls in flight in C) before libbpf closes the fds; the handles of maps
            # whose wrappers are gone are in the per-map state the object keeps
            if d is not None:
                for bmap in d[2].created():
                    bmap._revoke()
            for view in self._views or ():
                view._revoke()
            for state in (self._map_shared or {}).values():
                if state.fdh is not None:
                    objcalls.fd_revoke(state.fdh)
            self._found = self._map_shared = None  # (pointers into the freed object)
            ptr, self._ptr = self._ptr, None
            kept, self._kept_fds = self._kept_fds, None

            def free() -> None:
                if ptr is not None:
                    objcalls.close(ptr)
                for fd in (kept or {}).values():
                    os.close(fd)

            g.release(free)
            if failed is not None:
                raise failed

    def _keep_fd(self, what: str, fd: int | None) -> None:
        """Own ``fd`` (a dup libbpf uses until load) for ``what``, closing the one it replaces."""
        if self._kept_fds is None:
            self._kept_fds = {}
        old = self._kept_fds.pop(what, None)
        if fd is not None:
            self._kept_fds[what] = fd
        if old is not None:
            os.close(old)

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self._closed or self._ptr is None:  # closed, or never owned a pointer
            return
        try:
            warnings.warn(f"BpfObject '{self._name}' was not closed", ResourceWarning, stacklevel=2)
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._loaded else "opened, not loaded")
        return (
            f"<BpfObject '{self._name}' {state} programs={len(self._programs)} "
            f"maps={len(self._maps)}>"
        )


def _object_index(ptr: Any) -> bytes:
    """The names of the object, its programs and maps from one C call (decoded lazily)."""
    return objcalls.object_index(ptr)


def _stem(path: str) -> str:
    name = os.path.basename(path)
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def open_object(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    object_name: str | None = None,
    pin_root_path: str | None = None,
    kconfig: str | None = None,
    btf_custom_path: str | None = None,
    bpf_token_path: str | None = None,
    kernel_log_level: int | None = None,
) -> BpfObject:
    """Open a BPF object (a path, or the object file's bytes) without loading it.

    Configure programs and maps, then call ``obj.load()``.

    ``bpf_token_path``: a BPF filesystem with delegation options to create a BPF token from
    at load (Linux 6.9+, a process in a user namespace; see :mod:`tinybpf.token`). When it
    is not given, libbpf reads the environment variable ``LIBBPF_BPF_TOKEN_PATH`` here, at
    open; ``""`` turns tokens off. A token that cannot be created fails the load with an
    error naming why.

    Example::

        obj = tinybpf.open("prog.bpf.o")
        obj.globals["target_pid"] = 1234
        obj.load()
    """
    return _open(
        source,
        False,
        object_name,
        pin_root_path,
        kconfig,
        btf_custom_path,
        bpf_token_path,
        kernel_log_level,
    )


_new_instance = object.__new__
_FS_UTF8 = sys.getfilesystemencoding() == "utf-8" and sys.getfilesystemencodeerrors() in (
    "surrogateescape",
    "strict",
)
_INDEX_CAP = objcalls.INDEX_CAP
_open_object = objcalls.open_object


def _open(
    source: Any,
    load: bool,
    object_name: str | None,
    pin_root_path: str | None,
    kconfig: str | None,
    btf_custom_path: str | None,
    bpf_token_path: str | None,
    kernel_log_level: int | None,
) -> BpfObject:
    """Open (and with ``load`` set, load) in one C call, tinybpf_open_object.

    This is the path ``open + load + close`` is benchmarked on against C: the interpreter
    runs cache-cold after libbpf's and the kernel's work, so every Python call made here
    costs microseconds. Keep it short (see docs/performance.md).
    """
    opts = None
    if not (
        object_name is None
        and pin_root_path is None
        and kconfig is None
        and btf_custom_path is None
        and bpf_token_path is None
        and kernel_log_level is None
    ):
        if btf_custom_path is not None:
            _check_custom_btf(btf_custom_path)
        opts = new_opts(
            "bpf_object_open_opts",
            object_name=object_name,
            pin_root_path=pin_root_path,
            kconfig=kconfig,
            btf_custom_path=btf_custom_path,
            bpf_token_path=bpf_token_path,
            kernel_log_level=kernel_log_level,
        )
    if isinstance(source, str):
        path = source
        try:  # os.fsencode, without its calls: UTF-8 first (the codec's fast path)
            cpath = path.encode() if _FS_UTF8 else os.fsencode(path)
        except UnicodeEncodeError:  # lone surrogates: the file system's own escapes
            cpath = os.fsencode(path)
        cdata = None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ValueError("cannot open an empty BPF object")
        path = object_name or "<memory>"
        cpath, cdata = None, data
    else:
        path = os.fspath(source)
        cpath, cdata = cstr(path), None
    if cpath is not None and b"\0" in cpath:
        raise ValueError(f"embedded NUL byte in {path!r}")
    ptr, err, res = _open_object(cpath, cdata, opts, load)
    if ptr is None:

        def reopen() -> BpfObject:
            """The same object opened again, not loaded: what a failed load tried to load."""
            return _open(
                source,
                False,
                object_name,
                pin_root_path,
                kconfig,
                btf_custom_path,
                bpf_token_path,
                kernel_log_level,
            )

        try:
            _open_failed(path, cdata is None, err, res, reopen, opts)
        except BpfPermissionError as e:
            if not load or isinstance(e, TokenPermissionError):
                raise
            with reopen() as again:  # which programs were refused
                programs = again._load_set()
            raise _diagnosed_eperm(e, programs) from None
    # (on success the C side has already logged libbpf's messages, if any)
    if res.index_len > _INDEX_CAP:  # more names than the result holds
        return BpfObject(ptr, path, loaded=load)._keeping(opts)
    # BpfObject.__init__'s work, without its frame; the names stay in the result struct
    # until first used
    obj: BpfObject = _new_instance(BpfObject)
    obj._guard = Owner()
    obj._ptr = ptr
    obj._path = path
    obj._index = res
    if load:
        obj._loaded = True
    if opts is not None:
        obj._keep = opts
    return obj


def load(
    path: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    object_name: str | None = None,
    pin_root_path: str | None = None,
    kconfig: str | None = None,
    btf_custom_path: str | None = None,
    bpf_token_path: str | None = None,
    kernel_log_level: int | None = None,
) -> BpfObject:
    """Open and load a BPF object: ``open(path, **options).load()`` in one step.

    Takes the options of :func:`tinybpf.open`. Raises ``BpfFileNotFoundError`` (a
    FileNotFoundError) for a missing file and ``BpfError`` ("open '...' failed" /
    "load '...' failed") with the libbpf log.

    Example::

        with tinybpf.load("prog.bpf.o", pin_root_path="/sys/fs/bpf") as obj:
            print(list(obj.programs), list(obj.maps))
    """
    return _open(
        path,
        True,
        object_name,
        pin_root_path,
        kconfig,
        btf_custom_path,
        bpf_token_path,
        kernel_log_level,
    )
