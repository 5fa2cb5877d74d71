"""The exception hierarchy: BpfError is an OSError, subclasses add builtin meanings."""

from __future__ import annotations

import errno
import pickle

import pytest

import tinybpf
from tinybpf import (
    BpfClosedError,
    BpfError,
    BpfFileNotFoundError,
    BpfNotSupportedError,
    BpfPermissionError,
    BpfPhaseError,
    BtfValidationError,
)
from tinybpf.errors import error_for_errno


class TestBpfError:
    def test_message_only(self):
        e = BpfError("something failed")
        assert str(e) == "something failed"
        assert e.errno == 0
        assert e.libbpf_log is None

    def test_with_log(self):
        e = BpfError("load 'x.bpf.o' failed: Permission denied", errno.EACCES, "line 1\nline 2")
        assert (
            str(e) == "load 'x.bpf.o' failed: Permission denied\n\nlibbpf output:\nline 1\nline 2"
        )
        assert e.errno == errno.EACCES
        assert e.libbpf_log == "line 1\nline 2"

    def test_empty_log_is_not_appended(self):
        assert str(BpfError("m", 1, "")) == "m"

    def test_is_an_oserror(self):
        e = BpfError("m", errno.EINVAL)
        assert isinstance(e, OSError)
        with pytest.raises(OSError) as ei:
            raise e
        assert ei.value.errno == errno.EINVAL

    def test_keyword_arguments(self):
        e = BpfError("m", errno=errno.E2BIG, libbpf_log="log")
        assert (e.errno, e.libbpf_log) == (errno.E2BIG, "log")

    def test_exported_from_package(self):
        assert tinybpf.BpfError is BpfError
        assert tinybpf.BtfValidationError is BtfValidationError


class TestSubclasses:
    def test_file_not_found(self):
        e = BpfFileNotFoundError("BPF object file not found: x", errno.ENOENT)
        assert isinstance(e, BpfError)
        assert isinstance(e, FileNotFoundError)
        with pytest.raises(FileNotFoundError):
            raise e

    def test_permission(self):
        e = BpfPermissionError("m", errno.EPERM)
        assert isinstance(e, BpfError) and isinstance(e, PermissionError)

    @pytest.mark.parametrize("cls", [BpfClosedError, BpfNotSupportedError, BpfPhaseError])
    def test_others_are_bpf_errors(self, cls):
        e = cls("m")
        assert isinstance(e, BpfError) and isinstance(e, OSError)
        assert str(e) == "m"

    @pytest.mark.parametrize(
        "err,cls",
        [
            (errno.ENOENT, BpfFileNotFoundError),
            (-errno.ENOENT, BpfFileNotFoundError),
            (errno.EPERM, BpfPermissionError),
            (errno.EACCES, BpfPermissionError),
            (errno.EOPNOTSUPP, BpfNotSupportedError),
            (524, BpfNotSupportedError),  # kernel ENOTSUPP
            (errno.EINVAL, BpfError),
            (errno.E2BIG, BpfError),
        ],
    )
    def test_error_for_errno(self, err, cls):
        assert error_for_errno(err) is cls


class TestBtfValidationError:
    def test_defaults(self):
        e = BtfValidationError("Size mismatch: X is 4 bytes, BTF type 'y' is 8 bytes")
        assert e.suggestions == []
        assert e.errno == 0
        assert e.libbpf_log is None
        assert isinstance(e, BpfError)
        assert str(e).startswith("Size mismatch:")

    def test_suggestions(self):
        e = BtfValidationError("m", ["BTF struct 'y' (8 bytes):", "  a: int at offset 0"])
        assert e.suggestions == ["BTF struct 'y' (8 bytes):", "  a: int at offset 0"]
        assert str(e) == "m"


class TestPickle:
    @pytest.mark.parametrize(
        "exc",
        [
            BpfError("load 'x' failed: Permission denied", errno.EACCES, "verifier says no"),
            BpfError("plain"),
            BpfFileNotFoundError("BPF object file not found: /x", errno.ENOENT),
            BpfClosedError("Cannot use program after BpfObject is closed"),
            BpfNotSupportedError("nope", errno.EOPNOTSUPP),
        ],
        ids=repr,
    )
    def test_round_trip(self, exc):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc)
        assert str(back) == str(exc)
        assert back.errno == exc.errno
        assert back.libbpf_log == exc.libbpf_log

    def test_validation_error_round_trip(self):
        exc = BtfValidationError("Field count mismatch: a", ["hint 1", "hint 2"])
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is BtfValidationError
        assert str(back) == "Field count mismatch: a"
        assert back.suggestions == ["hint 1", "hint 2"]
