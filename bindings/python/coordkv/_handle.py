"""The lifetime of one library handle (a store or a watch), in one place.

A handle is released exactly once, whichever comes first: an explicit close(), the end
of a `with` block, or the object being garbage-collected (a weakref finalizer, the
safety net for forgotten closes). The finalizer holds the raw handle and the C close
function, never the Python object, so it cannot keep the object alive.

After close the raw handle is kept and still passed to the library on purpose: the
library's handles are generation-checked, so it answers CKV_CLOSED itself and the
binding needs no "closed" bookkeeping of its own to report use after close.
"""

from __future__ import annotations

import weakref
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar

_Self = TypeVar("_Self", bound="NativeHandle")


class NativeHandle:
    """Base for Python objects that own a library handle released by a C `_close`."""

    def __init__(self, handle: Any, close_function: Callable[[Any], None]) -> None:
        self._handle = handle
        self._finalizer = weakref.finalize(self, close_function, handle)

    def close(self) -> None:
        """Releases the handle; later calls on this object raise ClosedError.
        Closing twice is harmless."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._leave()

    def _leave(self) -> None:
        """What the end of a `with` block does: close (a subclass may do more first)."""
        self.close()
