"""Named errno sets: the one place outside :mod:`tinybpf.errors` that knows which errno
values mean what. Code elsewhere asks ``failed_with(ret, GONE)`` or passes a set as
``check_int(..., tolerate=GONE)`` instead of comparing errno values by hand.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "ALREADY_EXISTS",
    "BATCH_REFUSED",
    "BUSY",
    "ENOTSUPP",
    "EXISTS_OR_GONE",
    "GONE",
    "GONE_OR_INVALID",
    "INTERRUPTED",
    "INVALID",
    "MISSING",
    "MISSING_OR_INVALID",
    "NOT_FOUND",
    "NOT_FOUND_OR_UNSUPPORTED",
    "NOT_SUPPORTED",
    "NO_SPACE",
    "OPNOTSUPP",
    "OUT_OF_RANGE",
    "PERMISSION",
    "RET_ALREADY_EXISTS",
    "RET_INTERRUPTED",
    "RET_NOT_FOUND",
    "RET_OUT_OF_RANGE",
    "RET_TRY_AGAIN",
    "TRY_AGAIN",
    "UNSUPPORTED_OR_INVALID",
    "failed_with",
    "is_",
]

ENOTSUPP = 524  # the kernel-internal "not supported" that bpf() can return

NOT_FOUND = frozenset({_errno.ENOENT})
"""No such element/object/file."""
MISSING = frozenset({_errno.ENOENT, _errno.ESRCH})
"""A named thing (a kernel function, a process) does not exist."""
MISSING_OR_INVALID = MISSING | {_errno.EINVAL}
"""Missing, or refused as invalid (how some attach kinds report a missing target)."""
GONE = frozenset({_errno.ENOENT, _errno.ENODEV})
"""An interface or program went away (a detach that has nothing left to do)."""
GONE_OR_INVALID = GONE | {_errno.EINVAL}
EXISTS_OR_GONE = GONE | {_errno.EEXIST}
"""Another program replaced ours, or the interface/program is gone (XDP detach)."""
ALREADY_EXISTS = frozenset({_errno.EEXIST})
NOT_SUPPORTED = frozenset({_errno.EOPNOTSUPP, _errno.ENOTSUP, ENOTSUPP})
"""This kernel cannot do it."""
OPNOTSUPP = frozenset({_errno.EOPNOTSUPP})
"""Exactly EOPNOTSUPP (e.g. a link type without a separate detach)."""
UNSUPPORTED_OR_INVALID = NOT_SUPPORTED | {_errno.EINVAL}
"""What map commands a map type lacks fail with."""
NOT_FOUND_OR_UNSUPPORTED = NOT_FOUND | NOT_SUPPORTED
BATCH_REFUSED = frozenset({_errno.EINVAL, _errno.EPERM})
"""A batch command refused as a whole (nothing done)."""
INVALID = frozenset({_errno.EINVAL})
PERMISSION = frozenset({_errno.EPERM})
NO_SPACE = frozenset({_errno.ENOSPC})
OUT_OF_RANGE = frozenset({_errno.ERANGE})
TRY_AGAIN = frozenset({_errno.EAGAIN})
INTERRUPTED = frozenset({_errno.EINTR})
BUSY = frozenset({_errno.EBUSY})


def failed_with(ret: int, errs: frozenset[int]) -> bool:
    """Whether a libbpf int return ``ret`` is a failure (-errno) with an errno in ``errs``."""
    return ret < 0 and -ret in errs


def is_(err: int | None, errs: frozenset[int]) -> bool:
    """Whether an errno value (e.g. ``BpfError.errno``, either sign) is in ``errs``."""
    return err is not None and abs(err) in errs


# Negative returns that hot paths compare with (bound once; no call per element).
RET_NOT_FOUND = -_errno.ENOENT
"""``tinybpf_*``/``bpf_map_*`` return for a missing key or the end of an iteration."""
RET_OUT_OF_RANGE = -_errno.ERANGE
"""The int fast paths' "not an int C takes": the general path decides."""
RET_TRY_AGAIN = -_errno.EAGAIN
RET_INTERRUPTED = -_errno.EINTR
RET_ALREADY_EXISTS = -_errno.EEXIST
