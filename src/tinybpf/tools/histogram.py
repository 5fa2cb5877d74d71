"""Text histograms in the layout of bcc's tools (``biolatency``, ``runqlat``...).

The input is the content of a histogram map: a sequence of counts indexed by slot (a list,
a ctypes array such as ``value.slots``, a typed memoryview...), a ctypes struct whose one
member is that array (``struct hist { __u32 slots[26]; }`` read from a map), or a mapping
``slot -> count`` such as a :class:`~tinybpf.BpfMap` (anything with ``items()``).
Per-CPU values (a list per slot) are summed. Slots and counts may be Python ints, ctypes
integers or raw bytes (read in the host byte order, as the kernel wrote them).

Log2 slots follow libbpf-tools' ``log2l()`` convention: slot 0 counts the values 0 and 1,
slot ``i >= 1`` counts ``2**i .. 2**(i+1) - 1``. A BPF program fills them with::

    u64 slot = log2l(v);   /* floor(log2(v)), 0 for v <= 1: the shift-and-compare helper
                              of libbpf-tools' bits.bpf.h (clang 14 cannot compile
                              __builtin_clzll for the BPF target) */
    if (slot >= MAX_SLOTS) slot = MAX_SLOTS - 1;
    __sync_fetch_and_add(&hist[slot], 1);

Example::

    >>> print(log2_hist_text([3, 1, 9, 0, 4], "usecs"), end="")
         usecs               : count    distribution
             0 -> 1          : 3        |*************                           |
             2 -> 3          : 1        |****                                    |
             4 -> 7          : 9        |****************************************|
             8 -> 15         : 0        |                                        |
            16 -> 31         : 4        |*****************                       |
"""

from __future__ import annotations

import ctypes
import operator
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Literal

__all__ = [
    "Buckets",
    "hist_data",
    "hist_sections_text",
    "linear_hist_text",
    "log2_hist_text",
    "print_hist_sections",
    "print_linear_hist",
    "print_log2_hist",
]

#: What the functions accept: counts by slot, a ``slot -> count`` mapping, or a map-like
#: object with ``items()``; a count may be a per-CPU list.
Buckets = Any

_STARS = 40


def _to_int(value: Any, what: str) -> int:
    """An int from an int, a ctypes integer or native-endian bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(value), sys.byteorder)
    if isinstance(value, ctypes._SimpleCData):
        value = value.value
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"histogram {what} must be an integer, got {type(value).__name__}")


def _to_count(value: Any) -> int:
    if isinstance(value, (list, tuple, ctypes.Array)):  # per-CPU values
        count = sum(_to_int(v, "count") for v in value)
    else:
        count = _to_int(value, "count")
    if count < 0:
        raise ValueError(f"histogram counts must not be negative, got {count}")
    return count


def _record_array(record: Any) -> Any:
    """The array of a ctypes struct/union with one array member (``struct hist { __u32
    slots[26]; }``, as tinybpf generates it from BTF), else TypeError."""
    names = getattr(record, "_tinybpf_fields_", None)
    if names is None:
        names = tuple(f[0] for f in getattr(record, "_fields_", ()))
    arrays = [getattr(record, n) for n in names]
    if len(arrays) == 1 and isinstance(arrays[0], ctypes.Array):
        return arrays[0]
    raise TypeError(
        f"histogram buckets cannot be a {type(record).__name__} with fields {list(names)}: "
        "pass its array of counts (e.g. value.slots)"
    )


def _nonzero_counts(buckets: Buckets) -> dict[int, int]:
    """``slot -> count`` for the slots whose count is not zero."""
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(buckets, (ctypes.Structure, ctypes.Union)):
        buckets = _record_array(buckets)
    if isinstance(buckets, memoryview) and buckets.format not in ("B", "b", "c"):
        buckets = buckets.tolist()  # a typed view such as memoryview(arr).cast("Q")
    if isinstance(buckets, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"histogram buckets cannot be {type(buckets).__name__} (raw bytes have no slot "
            "size): pass a sequence of counts"
        )
    if isinstance(buckets, Mapping) or (
        not isinstance(buckets, Sequence) and callable(getattr(buckets, "items", None))
    ):
        pairs = buckets.items()
    else:
        try:  # any sequence, also those iterable only through __getitem__ (ctypes arrays)
            pairs = enumerate(iter(buckets))
        except TypeError:
            raise TypeError(
                f"histogram buckets must be a sequence or a mapping, got {type(buckets).__name__}"
            ) from None
    counts: dict[int, int] = {}
    for key, value in pairs:
        slot = _to_int(key, "slot")
        if slot < 0:
            raise ValueError(f"histogram slots must not be negative, got {slot}")
        count = _to_count(value)
        if count:
            counts[slot] = counts.get(slot, 0) + count
    return counts


def _slot_range(counts: dict[int, int], strip_leading_zeros: bool) -> range:
    if not counts:
        return range(0)
    return range(min(counts) if strip_leading_zeros else 0, max(counts) + 1)


def _check_width(width: int) -> None:
    if operator.index(width) < 1:
        raise ValueError(f"width must be at least 1, got {width}")


def _bar(count: int, count_max: int, width: int) -> str:
    stars = count * width // count_max
    return "*" * stars + " " * (width - stars)


def _log2_bounds(slot: int) -> tuple[int, int]:
    return (0 if slot == 0 else 1 << slot), (2 << slot) - 1


def _linear_bounds(slot: int, step: int, base: int) -> tuple[int, int]:
    low = base + slot * step
    return low, low + step - 1


def log2_hist_text(
    buckets: Buckets,
    val_type: str = "value",
    *,
    width: int = _STARS,
    strip_leading_zeros: bool = True,
) -> str:
    """A power-of-two histogram as text, one ``\\n``-terminated line per row.

    The layout is that of libbpf-tools' ``print_log2_hist()`` (bcc's C tools)::

             usecs               : count    distribution
                 0 -> 1          : 3        |*************                           |
                 2 -> 3          : 1        |****                                    |

    - header: 5 spaces, ``val_type`` left-aligned in 19 columns, then
      ``" : count    distribution"``;
    - row: ``low`` right-aligned in 10 columns, ``" -> "``, ``high`` left-aligned in 10,
      ``" : "``, the count left-aligned in 8 (longer counts push the bar right), ``" |"``, the
      bar and ``"|"``. The bar has ``width`` columns (40): ``count * width // max_count``
      stars padded with spaces.
    - When the last non-empty slot is above 32 (values past 2**33), the wide layout is used:
      15 spaces and 29 columns in the header, 20-column bounds, and a bar of ``width // 2``.

    Slot 0 is shown as ``0 -> 1``, slot ``i`` as ``2**i -> 2**(i+1) - 1``. Rows after the last
    non-empty slot are left out; so are the rows before the first one, as bcc's
    ``strip_leading_zero`` does, unless ``strip_leading_zeros`` is False (the rows then start
    at slot 0). Empty slots in between are shown. No non-zero count gives ``""``.

    Example::

        text = tinybpf.log2_hist_text(obj.maps["hist"], "usecs")
        print(text, end="")
    """
    _check_width(width)
    counts = _nonzero_counts(buckets)
    slots = _slot_range(counts, strip_leading_zeros)
    if not slots:
        return ""
    count_max = max(counts.values())
    if slots[-1] <= 32:
        pad, label, col, stars = 5, 19, 10, width
    else:
        pad, label, col, stars = 15, 29, 20, width // 2
    lines = [f"{'':{pad}}{val_type:<{label}} : count    distribution"]
    for slot in slots:
        low, high = _log2_bounds(slot)
        count = counts.get(slot, 0)
        lines.append(
            f"{low:>{col}} -> {high:<{col}} : {count:<8} |{_bar(count, count_max, stars)}|"
        )
    return "\n".join(lines) + "\n"


def linear_hist_text(
    buckets: Buckets,
    val_type: str = "value",
    step: int = 1,
    base: int = 0,
    *,
    width: int = _STARS,
    strip_leading_zeros: bool = True,
) -> str:
    """A linear histogram as text: slot ``i`` counts the values ``base + i * step`` up to
    ``base + (i + 1) * step - 1``; the row shows its lower bound.

    The layout is that of bcc's ``print_linear_hist()``::

             msecs         : count     distribution
                1          : 2        |****************************************|
                2          : 1        |********************                    |

    - header: 5 spaces, ``val_type`` left-aligned in 13 columns, then
      ``" : count     distribution"``;
    - row: 8 spaces, the lower bound left-aligned in 10 columns, ``" : "``, the count
      left-aligned in 8, ``" |"``, a ``width``-column bar (as in :func:`log2_hist_text`),
      ``"|"``.

    Rows run from the first non-empty slot (slot 0 when ``strip_leading_zeros`` is False) to
    the last one, empty slots in between included. No non-zero count gives ``""``. When
    that would be more than 1,000 rows (a stray large slot), every run of more than three
    empty slots is one line instead, saying how many slots and which values it leaves
    out (``... : 3999999994 empty slots elided (6 to 3999999999)``).

    Example::

        text = tinybpf.linear_hist_text(obj.maps["hist"], "msecs", step=10)
        print(text, end="")
    """
    _check_width(width)
    if operator.index(step) < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    base = operator.index(base)
    counts = _nonzero_counts(buckets)
    slots = _slot_range(counts, strip_leading_zeros)
    if not slots:
        return ""
    count_max = max(counts.values())
    lines = [f"     {val_type:<13} : count     distribution"]
    for slot, gap in _rows(counts, slots):
        if gap:
            low, high = base + slot * step, base + (slot + gap) * step - 1
            lines.append(f"        {'...':<10} : {gap} empty slots elided ({low} to {high})")
            continue
        count = counts.get(slot, 0)
        value = base + slot * step
        lines.append(f"        {value:<10} : {count:<8} |{_bar(count, count_max, width)}|")
    return "\n".join(lines) + "\n"


_MAX_ROWS = 1000
_MAX_GAP = 3  # empty slots shown in a row before a run of them is elided


def _rows(counts: dict[int, int], slots: range) -> Iterable[tuple[int, int]]:
    """``(slot, 0)`` per row, or ``(first empty slot, how many)`` for an elided run."""
    if len(slots) <= _MAX_ROWS:
        yield from ((slot, 0) for slot in slots)
        return
    prev = slots.start - 1
    for slot in sorted(counts):
        gap = slot - prev - 1
        if gap > _MAX_GAP:
            yield prev + 1, gap
        else:
            yield from ((s, 0) for s in range(prev + 1, slot))
        yield slot, 0
        prev = slot


def print_log2_hist(
    buckets: Buckets,
    val_type: str = "value",
    file: IO[str] | None = None,
    *,
    width: int = _STARS,
    strip_leading_zeros: bool = True,
) -> None:
    """Print :func:`log2_hist_text` to ``file`` (default ``sys.stdout``).

    Example::

        tinybpf.print_log2_hist(obj.maps["hist"], "usecs", file=sys.stderr)
    """
    text = log2_hist_text(buckets, val_type, width=width, strip_leading_zeros=strip_leading_zeros)
    (sys.stdout if file is None else file).write(text)


def print_linear_hist(
    buckets: Buckets,
    val_type: str = "value",
    step: int = 1,
    base: int = 0,
    file: IO[str] | None = None,
    *,
    width: int = _STARS,
    strip_leading_zeros: bool = True,
) -> None:
    """Print :func:`linear_hist_text` to ``file`` (default ``sys.stdout``).

    Example::

        tinybpf.print_linear_hist(obj.maps["hist"], "msecs", step=10)
    """
    text = linear_hist_text(
        buckets, val_type, step, base, width=width, strip_leading_zeros=strip_leading_zeros
    )
    (sys.stdout if file is None else file).write(text)


def hist_data(
    buckets: Buckets,
    kind: Literal["log2", "linear"] = "log2",
    *,
    step: int = 1,
    base: int = 0,
    strip_leading_zeros: bool = True,
) -> list[tuple[int, int, int]]:
    """The rows of the histogram as ``(low, high, count)`` with inclusive bounds, for plots.

    The rows are those the text functions show: from the first non-empty slot (slot 0 when
    ``strip_leading_zeros`` is False) to the last one. ``kind="log2"`` gives ``(0, 1, n)``
    for slot 0 and ``(2**i, 2**(i+1) - 1, n)`` for slot ``i``; ``kind="linear"`` gives
    ``(base + i*step, base + (i+1)*step - 1, n)``.

    Example::

        >>> tinybpf.hist_data([3, 1, 9])
        [(0, 1, 3), (2, 3, 1), (4, 7, 9)]
    """
    if kind not in ("log2", "linear"):
        raise ValueError(f"kind must be 'log2' or 'linear', got {kind!r}")
    if kind == "linear" and operator.index(step) < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    base = operator.index(base)
    counts = _nonzero_counts(buckets)
    rows = []
    for slot in _slot_range(counts, strip_leading_zeros):
        low, high = _log2_bounds(slot) if kind == "log2" else _linear_bounds(slot, step, base)
        rows.append((low, high, counts.get(slot, 0)))
    return rows


def _split_key(key: Any) -> tuple[Any, Any]:
    """(section, slot) of a sectioned histogram key: a ``(section, slot)`` pair, a dict
    with ``"slot"``, or a struct with a ``slot`` field (the section: its other field, or a
    tuple of its other fields)."""
    if isinstance(key, (tuple, list)) and len(key) == 2:
        return key[0], key[1]
    if isinstance(key, dict):
        data = dict(key)
    else:
        to_dict = getattr(key, "to_dict", None)
        if callable(to_dict):
            data = to_dict()
        elif isinstance(key, ctypes.Structure):
            data = {f[0]: getattr(key, f[0]) for f in key._fields_ if not f[0].startswith("_")}
        else:
            raise TypeError(
                "sectioned histogram keys must be (section, slot) pairs or structs with a "
                f"'slot' field, got {type(key).__name__}"
            )
    if "slot" not in data:
        raise TypeError(f"sectioned histogram key has no 'slot' field: {sorted(data)}")
    slot = data.pop("slot")
    rest = [
        v.decode("utf-8", "replace").rstrip("\0") if isinstance(v, bytes) else v
        for v in data.values()
    ]
    return (rest[0] if len(rest) == 1 else tuple(rest)), slot


def hist_sections_text(
    buckets: Buckets,
    val_type: str = "value",
    section_header: str = "key",
    *,
    kind: Literal["log2", "linear"] = "log2",
    step: int = 1,
    base: int = 0,
    section_format: Any = None,
    width: int = _STARS,
    strip_leading_zeros: bool = True,
) -> str:
    """One histogram per section, as bcc's ``print_log2_hist(val_type, section_header)``:
    for each section (sorted), a line ``"\\n{section_header} = {section}"`` then its
    histogram (:func:`log2_hist_text`, or :func:`linear_hist_text` with ``kind="linear"``).

    ``buckets`` maps keys to counts (a map, a dict, or ``(key, count)`` pairs); a key is a
    ``(section, slot)`` pair or a struct with a ``slot`` field whose other field is the
    section (several other fields make a tuple; char arrays read as text).
    ``section_format(section) -> str`` renders a section (default ``str``). Sections whose
    counts are all zero are left out.

    Example::

        >>> print(hist_sections_text({("sda", 2): 4, ("sda", 3): 1, ("sdb", 0): 2},
        ...                          "usecs", "disk"), end="")
        <BLANKLINE>
        disk = sda
             usecs               : count    distribution
                 4 -> 7          : 4        |****************************************|
                 8 -> 15         : 1        |**********                              |
        <BLANKLINE>
        disk = sdb
             usecs               : count    distribution
                 0 -> 1          : 2        |****************************************|
    """
    if kind not in ("log2", "linear"):
        raise ValueError(f"kind must be 'log2' or 'linear', got {kind!r}")
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(buckets, Mapping) or callable(getattr(buckets, "items", None)):
        pairs = buckets.items()
    else:
        pairs = buckets
    sections: dict[Any, dict[int, Any]] = {}
    for key, value in pairs:
        section, slot = _split_key(key)
        slot = _to_int(slot, "slot")
        per = sections.setdefault(section, {})
        per[slot] = _to_count(value) + _to_count(per.get(slot, 0))
    fmt = section_format or str
    out = []
    for section in sorted(sections, key=lambda s: (str(type(s)), s)):
        if kind == "log2":
            text = log2_hist_text(
                sections[section], val_type, width=width, strip_leading_zeros=strip_leading_zeros
            )
        else:
            text = linear_hist_text(
                sections[section],
                val_type,
                step,
                base,
                width=width,
                strip_leading_zeros=strip_leading_zeros,
            )
        if text:
            out.append(f"\n{section_header} = {fmt(section)}\n{text}")
    return "".join(out)


def print_hist_sections(
    buckets: Buckets,
    val_type: str = "value",
    section_header: str = "key",
    file: IO[str] | None = None,
    **options: Any,
) -> None:
    """Print :func:`hist_sections_text` to ``file`` (default ``sys.stdout``); ``options``
    are its keyword arguments.

    Example::

        tinybpf.print_hist_sections(obj.maps["hist"], "usecs", "disk")
    """
    text = hist_sections_text(buckets, val_type, section_header, **options)
    (sys.stdout if file is None else file).write(text)
