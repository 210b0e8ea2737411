"""Python objects that C calls back into, reachable from C only by an integer token.

C gets a small integer as `void *user_data`, never a pointer to a Python object, and the
ctypes trampolines are module-level objects, so the garbage collector can never free
something C may still call. A registration lives exactly as long as the C call (or, for
watches, the C handle) that may use it.

There is no lock: each step is one dict operation or one `next` on a counter, which the
interpreter makes atomic. A lock here could be held by another thread at the moment of a
`fork()` and then stay held in the child for good (issue 9: a forked child hung on it).
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from contextlib import contextmanager
from typing import Callable, Dict, Generic, Iterator, Optional, TypeVar

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., object])


class PythonCallback(Generic[_F]):
    """A Python function C calls back, and the first exception it raised: an exception
    never unwinds into C, it is kept here for the Python side to raise or report."""

    __slots__ = ("function", "raised")

    def __init__(self, function: _F) -> None:
        self.function = function
        self.raised: Optional[BaseException] = None

    def keep_first(self, raised: BaseException) -> None:
        if self.raised is None:
            self.raised = raised


class Registry(Generic[_T]):
    def __init__(self) -> None:
        self._items: Dict[int, _T] = {}
        self._tokens = itertools.count(1)  # 0 would reach C as NULL

    @contextmanager
    def registered(self, item: _T) -> Iterator[int]:
        """Registers `item` for the duration of a `with` block; yields its token."""
        token = next(self._tokens)
        self._items[token] = item
        try:
            yield token
        finally:
            del self._items[token]

    def add(self, item: _T) -> int:
        """Registers `item` until `discard(token)`: for registrations that outlive one
        call, such as a callback watch, which lives until its handle is closed."""
        token = next(self._tokens)
        self._items[token] = item
        return token

    def discard(self, token: int) -> None:
        self._items.pop(token, None)

    def take(self, token: Optional[int]) -> Optional[_T]:
        """Unregisters and returns the item (None if it is gone): for a callback C calls
        at most once, such as a lease's lost notification."""
        if token is None:
            return None
        return self._items.pop(token, None)

    def get(self, token: Optional[int]) -> Optional[_T]:
        if token is None:
            return None
        return self._items.get(token)


# A library thread is not a Python thread: for each call ctypes creates a Python thread
# state and deletes it afterwards, under the interpreter's thread-list lock. A fork()
# while that lock is held leaves it held in the child, and the child hangs in os.fork()
# itself (CPython 3.11 does not take the lock around fork). So the first call on each
# library thread (delivery threads, the lease keepalive thread) keeps its thread state
# for good: one per library thread, a few. On a Python thread (a lease lost inside the
# revoke that ended it) this only raises the state's use count once, which is harmless.
_pinned = threading.local()


def pin_thread_state() -> None:
    """Called first by every trampoline that a library thread may run."""
    if not getattr(_pinned, "done", False):
        ctypes.pythonapi.PyGILState_Ensure()  # never released: the state stays
        _pinned.done = True
