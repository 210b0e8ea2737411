"""One exception class per ckv_status: the binding's half of coordkv's error vocabulary.

A failed C call hands back a ckv_error through its own err_out; `call` reads the status,
message and conflict revision from that object, frees it, and raises the class that
stands for the status. Nothing is ever read from a thread-local "last error", so the
message always belongs to the call that failed, whichever thread made it.

Each class names its status exactly once (its `status` attribute); the code -> class
table is built from ERROR_CLASSES, and a test checks it against every status name the
library knows, so core ErrorKind, ckv_status and these classes cannot drift apart.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict, Optional, Tuple, Type

from . import _ffi


class CoordkvError(Exception):
    """A coordkv call failed. Catch a subclass to branch on the kind of failure.

    `status` is the ckv_status code, `message` the library's message (it starts with
    the status name), `current_revision` the key's revision for a ConflictError
    (0 otherwise), so a compare-and-swap loop can retry without another read.
    """

    status: int = _ffi.CKV_INTERNAL

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        current_revision: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.current_revision = current_revision

    @property
    def status_name(self) -> str:
        """The status as the library spells it: "NOT_FOUND", "CONFLICT", ..."""
        name: bytes = _ffi.lib.ckv_status_name(self.status)
        return name.decode("ascii")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keyword-only fields would be lost by Exception's default pickling.
        return (
            _rebuild,
            (type(self), self.message, self.status, self.current_revision),
        )


def _rebuild(
    cls: Type[CoordkvError], message: str, status: int, current_revision: int
) -> CoordkvError:
    return cls(message, status=status, current_revision=current_revision)


class NotFoundError(CoordkvError):
    """The key has no live value (never written, deleted, purged or expired)."""

    status = _ffi.CKV_NOT_FOUND


class ConflictError(CoordkvError):
    """A compare-and-swap lost; `current_revision` is the key's revision at the time."""

    status = _ffi.CKV_CONFLICT


class InvalidArgumentError(CoordkvError):
    """A bad key, prefix, URL, config, revision, or an argument C cannot carry."""

    status = _ffi.CKV_INVALID_ARGUMENT


class CoordkvTimeoutError(CoordkvError):
    """The operation did not finish in time (named so as not to shadow TimeoutError)."""

    status = _ffi.CKV_TIMEOUT


class ClosedError(CoordkvError):
    """The store or watch is closed, or was opened before fork()."""

    status = _ffi.CKV_CLOSED


class UnavailableError(CoordkvError):
    """The backend cannot be reached or cannot serve."""

    status = _ffi.CKV_UNAVAILABLE


class UnauthorizedError(CoordkvError):
    """Authentication failed."""

    status = _ffi.CKV_UNAUTHORIZED


class LimitError(CoordkvError):
    """A size or count limit was hit: value too large, too many watchers, overflow."""

    status = _ffi.CKV_LIMIT


class UnsupportedError(CoordkvError):
    """The backend, or its server version, cannot do this."""

    status = _ffi.CKV_UNSUPPORTED


class CanceledError(CoordkvError):
    """Abandoned on purpose: by a callback, or a watch ending."""

    status = _ffi.CKV_CANCELED


class InternalError(CoordkvError):
    """A bug inside coordkv (a caught panic included)."""

    status = _ffi.CKV_INTERNAL


class PermissionDeniedError(CoordkvError):
    """Authenticated, but not allowed to use this subject, stream or bucket."""

    status = _ffi.CKV_PERMISSION_DENIED


class LeaseNotFoundError(CoordkvError):
    """The lease has ended (expired, revoked or abandoned) or never existed."""

    status = _ffi.CKV_LEASE_NOT_FOUND


ERROR_CLASSES: Tuple[Type[CoordkvError], ...] = (
    NotFoundError,
    ConflictError,
    InvalidArgumentError,
    CoordkvTimeoutError,
    ClosedError,
    UnavailableError,
    UnauthorizedError,
    LimitError,
    UnsupportedError,
    CanceledError,
    InternalError,
    PermissionDeniedError,
    LeaseNotFoundError,
)

_CLASS_BY_STATUS: Dict[int, Type[CoordkvError]] = {
    cls.status: cls for cls in ERROR_CLASSES
}


def error_for(status: int, message: str, current_revision: int = 0) -> CoordkvError:
    """The exception for a status; a code this binding does not know stays a
    CoordkvError carrying the raw status rather than being misfiled."""
    cls = _CLASS_BY_STATUS.get(status)
    if cls is None:
        return CoordkvError(message, status=status, current_revision=current_revision)
    return cls(message, current_revision=current_revision)


def raise_for(status: int, error: Any) -> None:
    """Turns a failed call's status and its ckv_error (which it frees) into an exception."""
    if status == _ffi.CKV_OK:
        return
    try:
        if error:
            message = _ffi.lib.ckv_error_message(error).decode("utf-8", "replace")
            current_revision = _ffi.lib.ckv_error_current_revision(error)
        else:
            message, current_revision = status_message(status, "(no error details)"), 0
    finally:
        _ffi.lib.ckv_error_free(error)
    raise error_for(status, message, current_revision)


def call(function: Callable[..., int], *args: Any) -> None:
    """Calls a fallible C function with a fresh err_out appended; raises on failure."""
    error = ctypes.POINTER(_ffi.ckv_error)()
    status = function(*args, ctypes.byref(error))
    raise_for(status, error)


def invalid_argument(message: str) -> InvalidArgumentError:
    """For the few arguments the binding itself must refuse because C cannot carry
    them faithfully (a NUL inside a C string, a revision outside uint64)."""
    return InvalidArgumentError(status_message(_ffi.CKV_INVALID_ARGUMENT, message))


def status_message(status: int, text: str) -> str:
    """A message as the library spells one, "NAME: text", for the few failures the
    binding reports itself; the name is the library's (ckv_status_name)."""
    name = _ffi.lib.ckv_status_name(status).decode("ascii")
    return f"{name}: {text}"
