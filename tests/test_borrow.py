"""Close-safety by construction (issue 15 item 4): the owner/borrow protocol of
tinybpf._core.owner wraps every method that reaches a resource, without a list of names.

A method added to a handle class (here: in a subclass, as a contributor would add one to
the class) is a borrow as soon as it names the pointer accessor: it can use the pointer,
and a ``close()`` from another thread waits for it instead of freeing the memory under it.
"""

from __future__ import annotations

import threading
import time

from conftest import bpf_obj

import tinybpf
from tinybpf._core import lib, pystr
from tinybpf.program import BpfProgram


class _ProgramWithANewMethod(BpfProgram):
    def section_after(self, started: threading.Event, go_on: threading.Event) -> str:
        """A method nobody listed anywhere: takes the pointer, waits, then uses it."""
        p = self._p()
        started.set()
        go_on.wait(5)
        return pystr(lib.bpf_program__section_name(p))

    @property
    def prog_type_now(self) -> int:
        return int(lib.bpf_program__type(self._p()))

    def sections(self, n: int):
        """A generator method: every step is a borrow, not only its creation."""
        for _ in range(n):
            yield pystr(lib.bpf_program__section_name(self._p())), self._guard.held()


def _program(obj: tinybpf.BpfObject) -> _ProgramWithANewMethod:
    prog = obj.program("handle_getpid")
    prog.__class__ = _ProgramWithANewMethod
    return prog  # type: ignore[return-value]


def test_a_new_method_and_property_borrow_without_being_listed():
    with tinybpf.load(bpf_obj("minimal")) as obj:
        prog = _program(obj)
        started, go_on = threading.Event(), threading.Event()
        go_on.set()
        # outside a borrow, _p() raises AssertionError: these work only because they borrow
        assert prog.section_after(started, go_on) == prog.section
        assert prog.prog_type_now == int(prog.type)
        steps = prog.sections(3)
        assert list(steps) == [(prog.section, True)] * 3
        assert not prog._guard.held()  # no borrow left between or after the steps


def test_close_from_another_thread_waits_for_a_new_method():
    obj = tinybpf.load(bpf_obj("minimal"))
    prog = _program(obj)
    started, go_on = threading.Event(), threading.Event()
    result: list[str] = []
    closed_at: list[float] = []

    worker = threading.Thread(target=lambda: result.append(prog.section_after(started, go_on)))
    worker.start()
    assert started.wait(5)

    closer = threading.Thread(target=lambda: (obj.close(), closed_at.append(time.monotonic())))
    closer.start()
    time.sleep(0.2)
    assert not closed_at, "close() freed the object while a borrow was in flight"
    released_at = time.monotonic()
    go_on.set()
    worker.join(5)
    closer.join(5)
    assert result == [prog.section]  # the pointer was still valid when used
    assert closed_at and closed_at[0] >= released_at
    assert obj.closed
