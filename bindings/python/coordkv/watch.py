"""Watches: the events of a key or prefix, by iteration or by callback.

A Watch wraps one ckv_watch handle. Polling (`next`, iteration) calls ckv_watch_next,
which releases the GIL while it waits; an unbounded wait is cut into short slices so
that Ctrl-C (KeyboardInterrupt) still reaches a thread blocked in a watch. Every rule
about order, overflow, snapshots, replays and resumption is the library's: the binding
only copies each event out of C before freeing it.

A callback watch is called on the library's delivery threads; ctypes takes the GIL for
each call. The user's callback is reached through a module-level trampoline and an
integer token (see _callbacks), and the registration is dropped only after
ckv_watch_close has returned, when the library guarantees no further call. An exception
raised by the callback never unwinds into C: the first one is kept on `Watch.error`, and
the watch goes on delivering.
"""

from __future__ import annotations

import ctypes
import enum
import operator
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from . import _ffi
from ._callbacks import PythonCallback, Registry, pin_thread_state
from ._handle import NativeHandle
from .entry import Entry, entry_from_native
from .errors import ClosedError, invalid_argument, raise_for

# A wait is made of waits at most this long, so signals (Ctrl-C) are handled promptly.
_WAIT_SLICE_MS = 200
# Largest progress interval the C struct holds, in milliseconds.
_U64_MAX = (1 << 64) - 1


class EventKind(enum.IntEnum):
    """What an event is; the values are the CKV_EVENT_* codes."""

    PUT = _ffi.CKV_EVENT_PUT
    DELETE = _ffi.CKV_EVENT_DELETE
    PURGE = _ffi.CKV_EVENT_PURGE
    EXPIRED = _ffi.CKV_EVENT_EXPIRED
    SYNCED = _ffi.CKV_EVENT_SYNCED
    PROGRESS = _ffi.CKV_EVENT_PROGRESS
    CANCELED = _ffi.CKV_EVENT_CANCELED


class CancelReason(enum.IntEnum):
    """Why a watch ended; the values are the CKV_CANCEL_* codes."""

    CLOSED = _ffi.CKV_CANCEL_CLOSED
    OVERFLOW = _ffi.CKV_CANCEL_OVERFLOW
    WATCHER_LIMIT = _ffi.CKV_CANCEL_WATCHER_LIMIT
    HISTORY_LOST = _ffi.CKV_CANCEL_HISTORY_LOST
    STORE_CLOSED = _ffi.CKV_CANCEL_STORE_CLOSED


@dataclass(frozen=True)
class Event:
    """One event of one watch.

    Data events (PUT, DELETE, PURGE, EXPIRED) carry `entry` and, when the watch asked
    for prev_value, `prev`. For SYNCED and PROGRESS, `revision` is the bookmark; for
    CANCELED, `revision` is the last revision the watch is complete through (a new watch
    from revision + 1 continues without a gap) and `cancel_reason` says why.
    """

    kind: EventKind
    revision: int
    entry: Optional[Entry] = None
    prev: Optional[Entry] = None
    cancel_reason: Optional[CancelReason] = None
    message: str = ""
    catch_up: bool = False
    """Part of the catch-up (snapshot values and SYNCED, replayed events), not live."""
    resync: bool = False
    """Part of a resync (a `resync` watch that may have missed events): a fresh snapshot's
    values and its SYNCED, which replace what the consumer had instead of adding to it."""


def event_from_native(event: Any) -> Event:
    """Copies a borrowed, non-NULL ckv_event into an Event."""
    lib = _ffi.lib
    kind = EventKind(lib.ckv_event_kind(event))
    entry = lib.ckv_event_entry(event)
    prev = lib.ckv_event_prev_entry(event)
    reason = lib.ckv_event_cancel_reason(event)
    message = lib.ckv_event_message(event)
    return Event(
        kind=kind,
        revision=lib.ckv_event_revision(event),
        entry=entry_from_native(entry) if entry else None,
        prev=entry_from_native(prev) if prev else None,
        cancel_reason=CancelReason(reason) if reason else None,
        message=message.decode("utf-8", "replace") if message else "",
        catch_up=bool(lib.ckv_event_is_catch_up(event)),
        resync=bool(lib.ckv_event_is_resync(event)),
    )


WatchCallback = Callable[[Event], None]
"""A callback watch's function; it runs on a library thread, one event at a time."""


# The open callback watches: each one's function, and the first exception it raised.
_callback_watches: Registry[PythonCallback[WatchCallback]] = Registry()

def _deliver(user_data: Optional[int], event: Any) -> None:
    pin_thread_state()
    state = _callback_watches.get(user_data)
    if state is None:
        return
    try:
        state.function(event_from_native(event))
    except BaseException as raised:  # noqa: BLE001 - nothing may unwind into C
        state.keep_first(raised)


_watch_trampoline = _ffi.ckv_watch_fn(_deliver)


def _close_watch(handle: Any, token: Optional[int]) -> None:
    _ffi.lib.ckv_watch_close(handle)
    # Only now, with the library promising no further call, may the callback go.
    if token is not None:
        _callback_watches.discard(token)


def watch_options(*, prefix=False, start_revision=0, snapshot=False, prev_value=False,
                  ignore_deletes=False, buffer_size=None, progress_interval=None, resync=False,
                  quiet_writes=False) -> _ffi.ckv_watch_options:  # fmt: skip (Store.watch() types and documents them)
    """The C options struct: the library's defaults, then what the caller set."""
    options = _ffi.ckv_watch_options()
    _ffi.lib.ckv_watch_options_init(ctypes.byref(options))
    options.prefix = bool(prefix)
    options.start_revision = unsigned_64(start_revision, "start_revision")
    options.snapshot = bool(snapshot)
    options.prev_value = bool(prev_value)
    options.ignore_deletes = bool(ignore_deletes)
    options.resync = bool(resync)
    options.quiet_writes = bool(quiet_writes)
    if buffer_size is not None:
        options.buffer_size = unsigned_64(buffer_size, "buffer_size")
    if progress_interval is not None:
        milliseconds = max(0, round(progress_interval * 1000))
        if milliseconds > _U64_MAX:
            raise invalid_argument(f"progress_interval {progress_interval} s is too large")
        options.progress_interval_ms = milliseconds
    return options


def unsigned_64(number: int, what: str) -> int:
    """`number` as an int that fits a uint64_t: a typed error here, not ctypes' overflow."""
    number = operator.index(number)
    if not 0 <= number <= _U64_MAX:
        raise invalid_argument(f"{what} {number} does not fit in uint64")
    return number


class Watch(NativeHandle):
    """An open watch: iterate it, call next(), or (callback watches) let it call you.

    Iteration yields every event and stops after the final CANCELED (or once the watch is
    closed). Use it as a context manager, or call close(): after close() returns (called
    outside a callback), a callback watch's function is not running and is never called
    again; called from inside a callback it returns at once, and the watch's function is
    not called after the current call. A watch keeps its store open.
    """

    def __init__(self, *, _handle: Any, _token: Optional[int] = None, _store: Any = None) -> None:
        """Not for users: use Store.watch or Store.watch_callback."""
        self._token = _token
        # The store is closed when it is collected; while this watch is reachable, it is not.
        self._store = _store
        super().__init__(_handle, lambda h: _close_watch(h, _token))

    def __repr__(self) -> str:
        return f"<coordkv.Watch {'closed' if self.closed else 'open'}>"

    def close(self) -> None:
        """Closes the watch (idempotent). If a callback closed it already, this still
        waits for that callback to return: the library keeps a closed handle valid for
        that, and never reuses it, so closing it again is always safe."""
        if self.closed:
            _ffi.lib.ckv_watch_close(self._handle)
        else:
            self._finalizer()

    @property
    def error(self) -> Optional[BaseException]:
        """The first exception a callback watch's function raised, if any."""
        state = _callback_watches.get(self._token)
        return state.raised if state is not None else None

    def _next_once(self, timeout_ms: int) -> Optional[Event]:
        event = ctypes.POINTER(_ffi.ckv_event)()
        error = ctypes.POINTER(_ffi.ckv_error)()
        status = _ffi.lib.ckv_watch_next(
            self._handle, timeout_ms, ctypes.byref(event), ctypes.byref(error)
        )
        if status == _ffi.CKV_TIMEOUT:
            _ffi.lib.ckv_error_free(error)
            return None
        raise_for(status, error)
        try:
            return event_from_native(event)
        finally:
            _ffi.lib.ckv_event_free(event)

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event. Waits up to `timeout` seconds (None or negative: as long as it
        takes, as in C; 0: not at all) and returns None if none came. Raises ClosedError
        once the final CANCELED was taken or the watch was closed. The wait is cut into
        short slices, so KeyboardInterrupt arrives promptly."""
        if timeout is not None and timeout >= 0:
            deadline = time.monotonic() + timeout
            while True:
                left_ms = (deadline - time.monotonic()) * 1000
                event = self._next_once(round(max(0.0, min(float(_WAIT_SLICE_MS), left_ms))))
                if event is not None or left_ms <= _WAIT_SLICE_MS:
                    return event
        while True:
            event = self._next_once(_WAIT_SLICE_MS)
            if event is not None:
                return event

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            event = self.next()
        except ClosedError:
            raise StopIteration from None
        assert event is not None
        return event


def open_watch(
    store: Any, store_handle: Any, key: bytes, options: _ffi.ckv_watch_options
) -> Watch:
    handle = ctypes.POINTER(_ffi.ckv_watch)()
    error = ctypes.POINTER(_ffi.ckv_error)()
    status = _ffi.lib.ckv_watch_open(
        store_handle,
        key,
        len(key),
        ctypes.byref(options),
        ctypes.byref(handle),
        ctypes.byref(error),
    )
    raise_for(status, error)
    return Watch(_handle=handle, _store=store)


def open_callback_watch(
    store: Any,
    store_handle: Any,
    key: bytes,
    options: _ffi.ckv_watch_options,
    callback: WatchCallback,
) -> Watch:
    if not callable(callback):
        raise TypeError("a watch callback must be callable")
    token = _callback_watches.add(PythonCallback(callback))
    handle = ctypes.POINTER(_ffi.ckv_watch)()
    error = ctypes.POINTER(_ffi.ckv_error)()
    try:
        status = _ffi.lib.ckv_watch_callback(
            store_handle,
            key,
            len(key),
            ctypes.byref(options),
            _watch_trampoline,
            token,
            ctypes.byref(handle),
            ctypes.byref(error),
        )
        raise_for(status, error)
    except BaseException:
        _callback_watches.discard(token)
        raise
    return Watch(_handle=handle, _token=token, _store=store)
