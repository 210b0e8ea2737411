"""coordkv for Python: a thin ctypes binding over libcoordkv's C API (include/coordkv.h).

    import coordkv

    with coordkv.open("mem://") as store:
        revision = store.put("/nodes/n-1", b"up")
        entry = store.get("/nodes/n-1")
        store.update("/nodes/n-1", "down", entry.revision)

Modules, from the C boundary up: _ffi (ctypes declarations and library loading),
errors (one exception class per ckv_status), entry (Entry, Operation), _handle and
_callbacks (handle lifetimes and C-to-Python callbacks, shared with watches to come),
lease (Lease, LeaseInfo), store (Store), watch (Watch, Event).
"""

from __future__ import annotations

from . import _ffi
from .entry import Entry, Operation
from .errors import (
    ERROR_CLASSES,
    CanceledError,
    ClosedError,
    ConflictError,
    CoordkvError,
    CoordkvTimeoutError,
    InternalError,
    InvalidArgumentError,
    LeaseNotFoundError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedError,
)
from .lease import Lease, LeaseInfo, LostCallback
from .store import Key, LeaseId, ModifyFunction, Store, Value
from .watch import CancelReason, Event, EventKind, Watch, WatchCallback

__version__ = "0.1.0"

# coordkv.open(...) reads as naturally as Store.open(...). Kept out of __all__ so that
# `from coordkv import *` never shadows the builtin open().
open = Store.open
open_config = Store.open_config


def library_version() -> str:
    """The version of the loaded libcoordkv."""
    version: bytes = _ffi.lib.ckv_version()
    return version.decode("ascii")


def library_path() -> str:
    """Where the loaded libcoordkv was found."""
    return str(_ffi.LIBRARY_PATH)


__all__ = [
    "ERROR_CLASSES",
    "CancelReason",
    "CanceledError",
    "ClosedError",
    "ConflictError",
    "CoordkvError",
    "CoordkvTimeoutError",
    "Entry",
    "Event",
    "EventKind",
    "InternalError",
    "InvalidArgumentError",
    "Key",
    "Lease",
    "LeaseId",
    "LeaseInfo",
    "LeaseNotFoundError",
    "LimitError",
    "LostCallback",
    "ModifyFunction",
    "NotFoundError",
    "Operation",
    "PermissionDeniedError",
    "Store",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedError",
    "Value",
    "Watch",
    "WatchCallback",
    "library_path",
    "library_version",
]
