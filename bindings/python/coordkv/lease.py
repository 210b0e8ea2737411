"""Leases: keys that live as long as their holder, as ckv_lease_* translates them.

`Store.lease(ttl)` calls ckv_lease_grant and wraps the ckv_lease object it returns in a
Lease: its id and granted TTL (read once), its lost state (ckv_lease_is_lost,
ckv_lease_wait_lost), and the calls that name a lease by id (revoke, keep_alive,
time_to_live, abandon), which go through the store. Keepalive, expiry, revoke's DELETE
events and the lost state are the library's; the binding converts seconds and frees.

Unlike store and watch handles, a ckv_lease is a plain pointer: the library cannot tell a
freed one, and must not free it while another thread waits on it. So a Lease counts its
C calls in flight and frees the object (close(), or garbage collection, whichever comes
first) only once none is; after close() the calls that need it raise ClosedError, while
those by id keep working.

The optional lost callback goes through a module-level trampoline and an integer token,
like watch callbacks (see _callbacks). The library calls it at most once: on its
keepalive thread, or inside the call that ended the lease (revoke, abandon, the store's
close, which loses every lease of the store). The registration is dropped when that call
comes, so it lives until the lease is lost or its store closes.
"""

from __future__ import annotations

import ctypes
import math
import numbers
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Tuple

from . import _ffi
from ._callbacks import PythonCallback, Registry, pin_thread_state
from ._handle import NativeHandle
from .errors import (
    ClosedError,
    LeaseNotFoundError,
    invalid_argument,
    raise_for,
    status_message,
)
from .watch import _U64_MAX, _WAIT_SLICE_MS

LostCallback = Callable[[int, str], None]
"""A lease's lost callback: (lease id, the library's reason). Runs at most once, on a
library thread or inside the call that ended the lease; it must return promptly and must
not close the lease's store."""


@dataclass(frozen=True)
class LeaseInfo:
    """What Store.lease_time_to_live (or Lease.time_to_live) reports."""

    id: int
    ttl: float
    """The TTL granted, in seconds."""
    remaining: float
    """Seconds until the lease expires unless renewed."""
    keys: Tuple[str, ...] = ()
    """The keys attached to it, sorted (only when asked for with keys=True)."""


def milliseconds(seconds: float, what: str) -> int:
    """A duration in seconds as the whole milliseconds C takes, rounded up (a positive
    duration never becomes 0). Negative, NaN or too large: InvalidArgumentError."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    if isinstance(seconds, float) and math.isnan(seconds) or seconds < 0:
        raise invalid_argument(f"{what} must be a non-negative number of seconds, got {seconds}")
    if isinstance(seconds, float) and math.isinf(seconds) or seconds * 1000 > _U64_MAX:
        raise invalid_argument(f"{what} {seconds} s does not fit in uint64 milliseconds")
    # Through whole microseconds first, so that 1.1 s is 1100 ms and not 1101.
    microseconds = round(seconds * 1_000_000)
    whole = -(-microseconds // 1000)
    return max(whole, 1) if seconds > 0 else 0


# The lost callbacks not yet called, by token.
_lost_callbacks: Registry[PythonCallback[LostCallback]] = Registry()


def _lost(user_data: Optional[int], lease_id: int, reason: Optional[bytes]) -> None:
    pin_thread_state()
    state = _lost_callbacks.take(user_data)  # called at most once: drop it now
    if state is None:
        return
    try:
        state.function(lease_id, reason.decode("utf-8", "replace") if reason else "")
    except BaseException as raised:  # noqa: BLE001 - nothing may unwind into C
        state.keep_first(raised)


# Module-level, so the C function pointer lives as long as the module.
_lost_trampoline = _ffi.ckv_lease_lost_fn(_lost)


class Lease(NativeHandle):
    """A lease this process was granted (Store.lease): keys written with `lease=` live as
    long as it does, and the library keeps it alive until it is revoked, abandoned or
    lost, or its store closes.

    As a context manager it revokes the lease on exit (deleting its keys; a lease that
    has already ended is fine) and frees the lease object. close() frees only the object:
    the lease itself goes on. A Lease keeps its store open.
    """

    def __init__(
        self,
        *,
        _handle: Any,
        _store: Any,
        _callback: Optional[PythonCallback[LostCallback]] = None,
    ) -> None:
        """Not for users: use Store.lease."""
        self._store = _store
        self._callback = _callback
        self._id: int = _ffi.lib.ckv_lease_id(_handle)
        self._ttl: float = _ffi.lib.ckv_lease_ttl_ms(_handle) / 1000
        # C calls in flight on the object, and whether close() was asked: the object is
        # freed when both say so. The lock guards these two fields only (never a C call).
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closing = False
        super().__init__(_handle, _ffi.lib.ckv_lease_free)

    def __repr__(self) -> str:
        return f"<coordkv.Lease id={self._id} ttl={self._ttl:g}s>"

    @property
    def id(self) -> int:
        """The lease's id: what `lease=` of a write and the Store.lease_* calls take."""
        return self._id

    @property
    def ttl(self) -> float:
        """The TTL granted, in seconds: at least the one asked for (NATS grants whole
        seconds, and no less than the bucket's marker TTL)."""
        return self._ttl

    @property
    def closed(self) -> bool:
        """Whether close() was called (the lease object is, or is about to be, freed)."""
        return self._closing or not self._finalizer.alive

    @contextmanager
    def _native(self) -> Iterator[Any]:
        with self._lock:
            if self.closed:
                raise ClosedError(status_message(_ffi.CKV_CLOSED, "the Lease object was closed"))
            self._in_flight += 1
        try:
            yield self._handle
        finally:
            with self._lock:
                self._in_flight -= 1
                free = self._closing and self._in_flight == 0
            if free:
                self._finalizer()

    def close(self) -> None:
        """Frees the lease object (idempotent); the lease goes on: revoke() ends it.
        Afterwards `lost` and wait_lost() raise ClosedError; the calls by id still work.
        A wait in progress on another thread ends within a moment with ClosedError."""
        with self._lock:
            self._closing = True
            if self._in_flight:
                return  # the last call in flight frees it
        self._finalizer()

    @property
    def lost(self) -> bool:
        """Whether the lease is lost: keepalive could not renew it for a whole TTL, it
        expired, was revoked or abandoned, or its store closed. Once lost, always lost."""
        with self._native() as handle:
            return bool(_ffi.lib.ckv_lease_is_lost(handle))

    @property
    def lost_reason(self) -> Optional[str]:
        """Why the lease was lost (None while it is not)."""
        with self._native() as handle:
            reason = _ffi.lib.ckv_lease_lost_reason(handle)
        return None if reason is None else reason.decode("utf-8", "replace")

    def wait_lost(self, timeout: Optional[float] = None) -> bool:
        """Waits until the lease is lost or `timeout` seconds pass (None or negative: as
        long as it takes); returns whether it is lost. The wait is cut into short slices,
        so KeyboardInterrupt arrives promptly."""
        deadline = None
        if timeout is not None and timeout >= 0:
            deadline = time.monotonic() + timeout
        while True:
            slice_ms = _WAIT_SLICE_MS
            if deadline is not None:
                left_ms = (deadline - time.monotonic()) * 1000
                slice_ms = round(max(0.0, min(float(_WAIT_SLICE_MS), left_ms)))
            with self._native() as handle:
                status = _ffi.lib.ckv_lease_wait_lost(handle, slice_ms)
            if status == _ffi.CKV_OK:
                return True
            if status != _ffi.CKV_TIMEOUT:
                raise_for(status, None)
            if deadline is not None and time.monotonic() >= deadline:
                return False

    @property
    def error(self) -> Optional[BaseException]:
        """The exception the lost callback raised, if any."""
        return self._callback.raised if self._callback is not None else None

    def revoke(self) -> None:
        """Ends the lease and deletes every key attached to it (DELETE events);
        LeaseNotFoundError if it has already ended."""
        self._store.lease_revoke(self._id)

    def abandon(self) -> None:
        """Stops keeping the lease alive without revoking it: it and its keys expire
        after the TTL (EXPIRED events), as if this process had died."""
        self._store.lease_abandon(self._id)

    def keep_alive(self) -> float:
        """Renews the lease now (the library does this by itself); returns the seconds
        it has left. LeaseNotFoundError once it has ended."""
        remaining: float = self._store.lease_keep_alive(self._id)
        return remaining

    def time_to_live(self, keys: bool = False) -> LeaseInfo:
        """The granted TTL, the time left and, with keys=True, the attached keys."""
        info: LeaseInfo = self._store.lease_time_to_live(self._id, keys=keys)
        return info

    def _leave(self) -> None:
        """The end of a `with` block revokes the lease, then frees the object."""
        try:
            self.revoke()
        except LeaseNotFoundError:
            pass  # it ended already (revoked, abandoned or expired): nothing to undo
        finally:
            self.close()


def grant(store: Any, store_handle: Any, ttl: float, keep_on_close: bool,
          on_lost: Optional[LostCallback]) -> Lease:  # fmt: skip (Store.lease types it)
    """ckv_lease_grant with the options filled from ckv_lease_options_init."""
    ttl_ms = milliseconds(ttl, "ttl")
    options = _ffi.ckv_lease_options()
    _ffi.lib.ckv_lease_options_init(ctypes.byref(options))
    options.keep_on_close = bool(keep_on_close)
    callback = token = None
    if on_lost is not None:
        if not callable(on_lost):
            raise TypeError("on_lost must be callable")
        callback = PythonCallback(on_lost)
        token = _lost_callbacks.add(callback)
        options.lost = _lost_trampoline
        options.user_data = token
    handle = ctypes.POINTER(_ffi.ckv_lease)()
    error = ctypes.POINTER(_ffi.ckv_error)()
    try:
        status = _ffi.lib.ckv_lease_grant(
            store_handle, ttl_ms, ctypes.byref(options), ctypes.byref(handle), ctypes.byref(error)
        )
        raise_for(status, error)
    except BaseException:
        if token is not None:
            _lost_callbacks.discard(token)
        raise
    return Lease(_handle=handle, _store=store, _callback=callback)
