"""The helpers every generated module carries, as source text (after its header)."""

_HELPERS = '''
_K = typing.TypeVar("_K")
_V = typing.TypeVar("_V")
_AnyMap = tinybpf.BpfMap[typing.Any, typing.Any]


class _OpenEnum(enum.IntEnum):
    """An IntEnum that reads values it does not name as ``UNKNOWN_<n>`` members."""

    @classmethod
    def _missing_(cls, value: object) -> typing.Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value}"
        pseudo._value_ = value
        return pseudo


def _get_bits(storage: typing.Any, shift: int, bits: int, signed: bool) -> int:
    value = (int.from_bytes(bytes(storage), "little") >> shift) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _set_bits(storage: typing.Any, shift: int, bits: int, value: int) -> None:
    mask = (1 << bits) - 1
    raw = int.from_bytes(bytes(storage), "little")
    raw = (raw & ~(mask << shift)) | ((int(value) & mask) << shift)
    ctypes.memmove(storage, raw.to_bytes(len(storage), "little"), len(storage))


def _raw(value: typing.Any) -> bytes:
    return bytes(memoryview(value).cast("B"))


def _cstr(value: typing.Any) -> bytes:
    data = value if isinstance(value, bytes) else _raw(value)
    return data.split(b"\\0", 1)[0]


def _fill(array: typing.Any, value: typing.Any) -> None:
    if isinstance(value, str):
        value = value.encode()
    size = len(array)
    if isinstance(value, (bytes, bytearray)):
        if len(value) > size:
            raise ValueError(f"{len(value)} bytes for a char array of {size}")
        ctypes.memmove(array, bytes(value).ljust(size, b"\\0"), size)
        return
    items = list(value)
    if len(items) > size:
        raise ValueError(f"{len(items)} items for an array of {size}")
    for i, item in enumerate(items):
        current = array[i]
        if isinstance(current, ctypes.Array):
            _fill(current, item)
        elif isinstance(item, dict) and hasattr(type(current), "from_dict"):
            array[i] = type(current).from_dict(item)
        else:
            array[i] = item


def _array_bytes(ctype: typing.Any, value: typing.Any) -> bytes:
    array = ctype()
    _fill(array, value)
    return _raw(array)
'''
