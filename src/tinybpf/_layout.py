"""The one layout engine: where each member of a BTF struct or union sits, as data.

Both users of a record layout read it from here: the ctypes types built at run time
(:mod:`tinybpf._ctypes_gen`) and the source text of ``tinybpf gen``
(:mod:`tinybpf.tools.codegen`). A layout is a list of slots, each one entry of the ctypes
``_fields_`` of a ``_pack_ = 1`` record:

* ``field``: a named member, at its BTF offset;
* ``anon``: an unnamed struct or union member (ctypes promotes its fields: ``_anonymous_``);
* ``unnamed``: an unnamed member of another type (malformed BTF): hidden storage;
* ``pad``: bytes no member uses (holes and the tail up to the BTF size);
* ``bits``: the bytes that hold a run of bitfields (struct only), read and written through
  one property per bitfield (``BitSlice``: its shift from the storage start and width).

Names of hidden storage (pads, bits, anonymous members) are each user's choice: a slot
carries its kind's running ``index`` (``bits``: the byte where the run starts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._types import BtfField, BtfKind, BtfType

__all__ = ["BitSlice", "RecordLayout", "RecordSlot", "btf_size", "record_layout"]

_RECORDS = (BtfKind.STRUCT, BtfKind.UNION, BtfKind.DATASEC)


@dataclass(frozen=True)
class BitSlice:
    """One bitfield in its storage: ``bits`` wide, ``shift`` bits from the start of the
    storage bytes (host byte order), ``signed`` as its BTF type.

    Example::

        for slot in btf.layout("flags_struct").slots:
            for b in slot.bitfields:
                print(b.name, b.shift, b.bits)
    """

    name: str
    shift: int
    bits: int
    signed: bool


@dataclass(frozen=True)
class RecordSlot:
    """One entry of a :class:`RecordLayout`: ``kind`` is ``"field"`` (a named member),
    ``"anon"`` (an unnamed struct or union member, whose fields are promoted), ``"unnamed"``
    (an unnamed member of another type), ``"pad"`` (bytes no member uses) or ``"bits"``
    (the bytes holding a run of bitfields, described by ``bitfields``). ``offset`` and
    ``size`` are in bytes (``offset`` 0 for every member of a union); ``field`` is the
    member of ``field``/``anon``/``unnamed`` slots; ``index`` numbers pads, anonymous and
    unnamed slots of a record in order (``bits``: the byte where the run starts).

    Example::

        [(s.kind, s.offset, s.size) for s in btf.layout("event").slots]
        # [("field", 0, 4), ("pad", 4, 4), ("field", 8, 8)]
    """

    kind: str  # "field", "anon", "unnamed", "pad" or "bits"
    offset: int  # where the slot starts in the record (0 for every union member)
    size: int
    index: int = 0
    field: BtfField | None = None
    bitfields: tuple[BitSlice, ...] = ()


@dataclass(frozen=True)
class RecordLayout:
    """Where each member of a BTF struct, union or data section sits
    (:meth:`tinybpf.Btf.layout`): ``slots`` in order, every byte of the record covered
    once (a struct) or each slot from offset 0 (a union); ``size`` is the BTF size. The
    ctypes types tinybpf builds (``Btf.ctype``) and the code ``tinybpf gen`` writes are
    laid out from it, so ``ctypes.sizeof`` and the field offsets agree with it.

    Example::

        layout = btf.layout("event")
        assert layout.size == ctypes.sizeof(btf.ctype("event"))
    """

    is_union: bool
    size: int  # the BTF size
    slots: tuple[RecordSlot, ...]


def btf_size(f: BtfField) -> int:
    """A member's size as BTF gives it (the default ``size_of`` of :func:`record_layout`)."""
    if f.type is not None and f.type.size is not None:
        return f.type.size
    return f.size


def record_layout(bt: BtfType, size_of: Callable[[BtfField], int] = btf_size) -> RecordLayout:
    """The slots of a struct, union or data section. ``size_of`` is a member's size (the
    run-time generator passes the size of the ctypes type it made for the member)."""
    is_union = bt.kind == BtfKind.UNION
    members = list(bt.fields or ())
    slots: list[RecordSlot] = []
    count = {"pad": 0, "anon": 0, "unnamed": 0}
    pos = 0

    def pad(offset: int, size: int) -> None:
        slots.append(RecordSlot("pad", offset, size, count["pad"]))
        count["pad"] += 1

    i = 0
    while i < len(members):
        f = members[i]
        if f.bitfield_size and not is_union:
            # a run of bitfields sharing bytes: one storage slot
            run = [f]
            end_bit = f.bit_offset + f.bitfield_size
            j = i + 1
            while j < len(members) and members[j].bitfield_size:
                run.append(members[j])
                end_bit = max(end_bit, members[j].bit_offset + members[j].bitfield_size)
                j += 1
            start, end = f.bit_offset // 8, (end_bit + 7) // 8
            if start > pos:
                pad(pos, start - pos)
                pos = start
            bits = tuple(
                BitSlice(
                    m.name,
                    m.bit_offset - pos * 8,
                    m.bitfield_size,
                    bool(m.type is not None and m.type.signed),
                )
                for m in run
            )
            slots.append(RecordSlot("bits", pos, end - pos, start, None, bits))
            pos = end
            i = j
            continue
        size = size_of(f)
        if not is_union and f.offset > pos:
            pad(pos, f.offset - pos)
            pos = f.offset
        if f.name:
            kind = "field"
        elif f.type is not None and f.type.kind in _RECORDS:
            kind = "anon"
        else:
            kind = "unnamed"
        index = count.get(kind, 0)
        if kind != "field":
            count[kind] += 1
        slots.append(RecordSlot(kind, 0 if is_union else pos, size, index, f))
        if not is_union:
            pos = max(pos, f.offset + size)
        i += 1
    total = bt.size or 0
    used = max((s.size for s in slots), default=0) if is_union else pos
    if total > used:
        pad(0 if is_union else used, total - used)
    return RecordLayout(is_union, total, tuple(slots))
