"""Store: the revisioned key-value API, one method per ckv_* store function.

Each method converts its Python arguments to what the C function takes (keys and
values to bytes, revisions to uint64), makes exactly one C call with its own err_out,
and copies the results out before freeing them. Every rule about keys, sizes, retries
and conflicts lives in the library; the binding adds only what a Python user expects:
str or bytes, exceptions, a context manager, a finalizer.

read_modify_write is the one call that runs Python inside a C frame. The caller's
function is reached through a module-level trampoline and a token (see _callbacks);
whatever it raises is caught in the trampoline, the C call is aborted with
CKV_CANCELED, and the same exception is re-raised once C has returned, so no Python
exception ever unwinds through Rust.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any, Callable, List, Mapping, Optional, Union

from . import _ffi
from ._callbacks import PythonCallback, Registry
from ._handle import NativeHandle
from .entry import Entry, borrowed_bytes, entry_from_native, entry_value
from .errors import CoordkvError, call, invalid_argument
from .lease import Lease, LeaseInfo, LostCallback, grant, milliseconds
from .watch import (
    Watch,
    WatchCallback,
    open_callback_watch,
    open_watch,
    unsigned_64,
    watch_options,
)

Key = Union[str, bytes, bytearray, memoryview]
"""A key or prefix: str (sent as UTF-8) or raw bytes-like (sent as they are)."""

Value = Union[str, bytes, bytearray, memoryview]
"""A value: any bytes-like object, or str (stored as UTF-8)."""

ModifyFunction = Callable[[Optional[bytes]], Value]
"""read_modify_write's function: current value (None when the key has none) -> new."""

LeaseId = Union[int, Lease]
"""A lease: its id, or the Lease that Store.lease granted."""


def _key_bytes(key: Key) -> bytes:
    if isinstance(key, str):
        # surrogatepass lets an unencodable str reach the library as invalid UTF-8,
        # so the library, not the binding, decides it is an INVALID_ARGUMENT.
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return key
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"a key must be str or bytes-like, not {type(key).__name__}")


def _value_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a value must be bytes-like or str, not {type(value).__name__}")


def _c_string(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str, not {type(text).__name__}")
    data = text.encode("utf-8", "surrogatepass")
    if b"\0" in data:
        raise invalid_argument(f"{what} contains a NUL character")
    return data


def _lease_id(lease: LeaseId) -> int:
    if isinstance(lease, Lease):
        return lease.id
    return unsigned_64(lease, "lease")


def _write_options(
    lease: Optional[LeaseId], ttl: Optional[float], quiet: bool
) -> Optional[_ffi.ckv_write_options]:
    """The C write options, or None for a plain write (no option given)."""
    if lease is None and ttl is None and not quiet:
        return None
    options = _ffi.ckv_write_options()
    _ffi.lib.ckv_write_options_init(ctypes.byref(options))
    if lease is not None:
        options.lease = _lease_id(lease)
    if ttl is not None:
        ttl_ms = milliseconds(ttl, "ttl")
        if ttl_ms == 0:
            # C's ttl_ms 0 means "no TTL": passed on, a zero TTL would be dropped silently
            # instead of refused as the core refuses it.
            raise invalid_argument("a TTL must be greater than zero (ttl=0)")
        options.ttl_ms = ttl_ms
    options.quiet = bool(quiet)
    return options


def _take_key_list(key_list: Any) -> List[str]:
    """Copies a ckv_key_list into strs and frees it."""
    lib = _ffi.lib
    try:
        keys = []
        length = ctypes.c_size_t()
        for index in range(lib.ckv_key_list_len(key_list)):
            address = lib.ckv_key_list_get(key_list, index, ctypes.byref(length))
            keys.append(borrowed_bytes(address, length.value).decode("utf-8"))
        return keys
    finally:
        lib.ckv_key_list_free(key_list)


# The read_modify_write calls in progress: each one's function, and what it raised.
_modify_calls: Registry[PythonCallback[ModifyFunction]] = Registry()


def _call_modify(user_data: Optional[int], current: Any, result: Any) -> int:
    modify_call = _modify_calls.get(user_data)
    if modify_call is None:
        return _ffi.CKV_INTERNAL
    try:
        value = modify_call.function(entry_value(current) if current else None)
        data = _value_bytes(value)
        status: int = _ffi.lib.ckv_rmw_set_value(result, data, len(data))
        return status
    except BaseException as raised:  # nothing may unwind into C
        modify_call.keep_first(raised)
        return _ffi.CKV_CANCELED


# Module-level, so the C function pointer lives as long as the module.
_modify_trampoline = _ffi.ckv_rmw_fn(_call_modify)


class Store(NativeHandle):
    """An open coordkv store; safe to share between threads.

    Open with Store.open(url) or Store.open_config(config); close with close() or a
    `with` block. Every failure raises a subclass of coordkv.CoordkvError.
    """

    def __init__(self, *, _handle: Any) -> None:
        """Not for users: use Store.open or Store.open_config."""
        super().__init__(_handle, _ffi.lib.ckv_close)

    @classmethod
    def open(cls, url: str = "mem://") -> "Store":
        """Opens "mem://" (in-process) or "nats://host:port[,host:port...]"."""
        handle = ctypes.POINTER(_ffi.ckv_store)()
        call(_ffi.lib.ckv_open, _c_string(url, "url"), ctypes.byref(handle))
        return cls(_handle=handle)

    @classmethod
    def open_config(cls, config: Union[Mapping[str, Any], str]) -> "Store":
        """Opens a store from a JSON config: a mapping, or a JSON document as str."""
        if isinstance(config, str):
            document = config
        elif isinstance(config, Mapping):
            document = json.dumps(dict(config))
        else:
            raise TypeError(
                f"a config must be a mapping or a JSON str, not {type(config).__name__}"
            )
        handle = ctypes.POINTER(_ffi.ckv_store)()
        call(
            _ffi.lib.ckv_open_config,
            _c_string(document, "config"),
            ctypes.byref(handle),
        )
        return cls(_handle=handle)

    def __repr__(self) -> str:
        return f"<coordkv.Store {'closed' if self.closed else 'open'}>"

    def _u64_call(self, function: Any, *args: Any) -> int:
        """Calls `function(store, *args, &out, &err)` for its uint64_t result (a
        revision or a count), raising on failure."""
        out = ctypes.c_uint64()
        call(function, self._handle, *args, ctypes.byref(out))
        return out.value

    def _write(self, plain: Any, with_options: Any, key: Key, value: Value,
               revision: Optional[int], lease: Optional[LeaseId], ttl: Optional[float],
               quiet: bool) -> int:  # fmt: skip
        """A plain write, or its `_with` form when any write option was given."""
        k, v = _key_bytes(key), _value_bytes(value)
        expected = () if revision is None else (unsigned_64(revision, "revision"),)
        options = _write_options(lease, ttl, quiet)
        if options is None:
            return self._u64_call(plain, k, len(k), v, len(v), *expected)
        return self._u64_call(with_options, k, len(k), v, len(v), *expected, ctypes.byref(options))

    def put(
        self,
        key: Key,
        value: Value,
        *,
        lease: Optional[LeaseId] = None,
        ttl: Optional[float] = None,
        quiet: bool = False,
    ) -> int:
        """Writes unconditionally; returns the new revision.

        lease= attaches the key to a lease (a Lease or its id): it lives as long as the
        lease, is deleted when it is revoked and expires with it. ttl= (seconds, rounded
        up to whole milliseconds; NATS rounds up to whole seconds) expires the key
        (EXPIRED) unless it is written again first; not together with lease=. quiet=True
        hides the write from watchers that did not ask for quiet_writes. A lease that has
        ended raises LeaseNotFoundError."""
        lib = _ffi.lib
        return self._write(lib.ckv_put, lib.ckv_put_with, key, value, None, lease, ttl, quiet)

    def get(self, key: Key) -> Entry:
        """The key's latest live entry; NotFoundError if it has none."""
        k = _key_bytes(key)
        entry = ctypes.POINTER(_ffi.ckv_entry)()
        call(_ffi.lib.ckv_get, self._handle, k, len(k), ctypes.byref(entry))
        try:
            return entry_from_native(entry)
        finally:
            _ffi.lib.ckv_entry_free(entry)

    def create(
        self,
        key: Key,
        value: Value,
        *,
        lease: Optional[LeaseId] = None,
        ttl: Optional[float] = None,
        quiet: bool = False,
    ) -> int:
        """Writes only if the key has no live value; else ConflictError. Returns the
        new revision. lease=, ttl= and quiet= as for put()."""
        lib = _ffi.lib
        return self._write(
            lib.ckv_create, lib.ckv_create_with, key, value, None, lease, ttl, quiet
        )

    def update(
        self,
        key: Key,
        value: Value,
        revision: int,
        *,
        lease: Optional[LeaseId] = None,
        ttl: Optional[float] = None,
        quiet: bool = False,
    ) -> int:
        """Writes only if the key's latest revision is `revision`; else ConflictError
        (whose current_revision says what it is). Returns the new revision. lease=, ttl=
        and quiet= as for put()."""
        lib = _ffi.lib
        return self._write(
            lib.ckv_update, lib.ckv_update_with, key, value, revision, lease, ttl, quiet
        )

    def delete(self, key: Key, revision: int = 0) -> int:
        """Writes a delete tombstone; with revision != 0 only if the key's latest
        revision is `revision` (else ConflictError). Returns the tombstone's revision.
        """
        k = _key_bytes(key)
        expected = unsigned_64(revision, "revision")
        return self._u64_call(_ffi.lib.ckv_delete, k, len(k), expected)

    def purge(self, key: Key) -> int:
        """Drops the key's history; returns the revision of the purge marker."""
        k = _key_bytes(key)
        return self._u64_call(_ffi.lib.ckv_purge, k, len(k))

    def delete_prefix(self, prefix: Key) -> int:
        """Deletes every live key under the prefix; returns how many."""
        p = _key_bytes(prefix)
        return self._u64_call(_ffi.lib.ckv_delete_prefix, p, len(p))

    def keys(self, prefix: Key = "/") -> List[str]:
        """The live keys under the prefix, sorted. A prefix ending in "/" is
        segment-aligned; any other matches byte-wise."""
        p = _key_bytes(prefix)
        key_list = ctypes.POINTER(_ffi.ckv_key_list)()
        call(_ffi.lib.ckv_keys, self._handle, p, len(p), ctypes.byref(key_list))
        return _take_key_list(key_list)

    def list(self, prefix: Key = "/") -> List[Entry]:
        """The live entries under the prefix, sorted by key."""
        p = _key_bytes(prefix)
        entries = ctypes.POINTER(_ffi.ckv_entry_list)()
        call(_ffi.lib.ckv_list, self._handle, p, len(p), ctypes.byref(entries))
        return _take_entry_list(entries)

    def history(self, key: Key) -> List[Entry]:
        """The key's retained revisions, oldest first, tombstones included;
        NotFoundError if none is retained."""
        k = _key_bytes(key)
        entries = ctypes.POINTER(_ffi.ckv_entry_list)()
        call(_ffi.lib.ckv_history, self._handle, k, len(k), ctypes.byref(entries))
        return _take_entry_list(entries)

    def last_revision(self) -> int:
        """The store's latest revision (0 when nothing was ever written)."""
        return self._u64_call(_ffi.lib.ckv_last_revision)

    def read_modify_write(self, key: Key, modify: ModifyFunction) -> int:
        """Reads the key, calls modify(current value or None), and writes what it
        returns if nobody wrote in between; otherwise calls it again (bounded retries,
        then ConflictError). Returns the revision written.

        `modify` may run several times and on the calling thread only. Whatever it
        raises aborts the call and is raised here unchanged, with nothing written.
        """
        k = _key_bytes(key)
        modify_call = PythonCallback(modify)
        revision = ctypes.c_uint64()
        with _modify_calls.registered(modify_call) as token:
            try:
                call(
                    _ffi.lib.ckv_read_modify_write,
                    self._handle,
                    k,
                    len(k),
                    _modify_trampoline,
                    token,
                    ctypes.byref(revision),
                )
            except CoordkvError:
                if modify_call.raised is None:
                    raise
                # The CANCELED that C reported is only the echo of what `modify` raised.
            if modify_call.raised is not None:
                raise modify_call.raised
        return revision.value

    def watch(
        self,
        key: Key,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        snapshot: bool = False,
        prev_value: bool = False,
        ignore_deletes: bool = False,
        buffer_size: Optional[int] = None,
        progress_interval: Optional[float] = None,
        resync: bool = False,
        quiet_writes: bool = False,
    ) -> Watch:
        """Watches a key (or, with prefix=True, every key starting with `key`).

        start_revision replays every retained event from that revision first; snapshot
        sends the current values, then SYNCED; prev_value attaches each key's previous
        value; ignore_deletes skips all but PUT; buffer_size bounds the events waiting
        to be taken (beyond it the watch ends with CANCELED(OVERFLOW)); progress_interval
        (seconds) asks for PROGRESS bookmarks; resync=True answers events lost before they
        were read (history trimmed on a NATS server) with a fresh snapshot and SYNCED, each
        with Event.resync set, instead of CANCELED(HISTORY_LOST); quiet_writes=True also
        delivers quiet writes (lease keepalives, writes with quiet=True), each with
        entry.quiet set. Iterate the returned Watch, or call next().
        """
        options = watch_options(
            prefix=prefix,
            start_revision=start_revision,
            snapshot=snapshot,
            prev_value=prev_value,
            ignore_deletes=ignore_deletes,
            buffer_size=buffer_size,
            progress_interval=progress_interval,
            resync=resync,
            quiet_writes=quiet_writes,
        )
        return open_watch(self, self._handle, _key_bytes(key), options)

    def watch_callback(self, key: Key, callback: WatchCallback, **options: Any) -> Watch:
        """Like watch(), with the same keyword options, but `callback(event)` is called on
        a library thread, one event at a time and in order, until the watch ends or is
        closed. The callback may call any coordkv method, including close() on its own
        watch; an exception it raises is kept on Watch.error and does not stop the watch."""
        native_options = watch_options(**options)
        return open_callback_watch(self, self._handle, _key_bytes(key), native_options, callback)

    def lease(
        self,
        ttl: float,
        *,
        keep_on_close: bool = False,
        on_lost: Optional[LostCallback] = None,
    ) -> Lease:
        """Grants a lease of at least `ttl` seconds (rounded up to whole milliseconds; the
        granted TTL, Lease.ttl, may be longer) and keeps it alive until it is revoked or
        lost, or this store closes: closing the store revokes it, unless keep_on_close,
        which leaves it to expire. Use the Lease as a context manager to revoke it on
        exit. on_lost(lease_id, reason) is called once when the lease is lost, on a
        library thread or inside the call that ended it (revoke, abandon, close); it
        must return promptly and must not close this store.
        UnsupportedError on NATS servers before 2.11.2."""
        return grant(self, self._handle, ttl, keep_on_close, on_lost)

    def lease_revoke(self, lease: LeaseId) -> None:
        """Ends a lease (any store's) and deletes every key attached to it (DELETE
        events); LeaseNotFoundError if it has already ended."""
        call(_ffi.lib.ckv_lease_revoke, self._handle, _lease_id(lease))

    def lease_abandon(self, lease: LeaseId) -> None:
        """Stops keeping a lease alive without revoking it: it and its keys expire after
        the TTL (EXPIRED events), as if this process had died. LeaseNotFoundError when
        this store does not keep it alive."""
        call(_ffi.lib.ckv_lease_abandon, self._handle, _lease_id(lease))

    def lease_keep_alive(self, lease: LeaseId) -> float:
        """Renews a lease now (the library does it by itself for the leases it keeps);
        returns the seconds it has left. LeaseNotFoundError once it has ended."""
        remaining_ms = self._u64_call(_ffi.lib.ckv_lease_keep_alive, _lease_id(lease))
        return remaining_ms / 1000

    def lease_time_to_live(self, lease: LeaseId, keys: bool = False) -> LeaseInfo:
        """A lease's granted TTL and time left (seconds) and, with keys=True, the keys
        attached to it. LeaseNotFoundError once it has ended."""
        lease_id = _lease_id(lease)
        ttl_ms, remaining_ms = ctypes.c_uint64(), ctypes.c_uint64()
        key_list = ctypes.POINTER(_ffi.ckv_key_list)()
        call(
            _ffi.lib.ckv_lease_time_to_live,
            self._handle,
            lease_id,
            ctypes.byref(ttl_ms),
            ctypes.byref(remaining_ms),
            ctypes.byref(key_list) if keys else None,
        )
        return LeaseInfo(
            id=lease_id,
            ttl=ttl_ms.value / 1000,
            remaining=remaining_ms.value / 1000,
            keys=tuple(_take_key_list(key_list)) if keys else (),
        )

    def lease_list(self) -> List[int]:
        """The ids of the store's live leases (every process's), sorted."""
        ids = ctypes.POINTER(ctypes.c_uint64)()
        count = ctypes.c_size_t()
        call(_ffi.lib.ckv_lease_list, self._handle, ctypes.byref(ids), ctypes.byref(count))
        try:
            return [ids[index] for index in range(count.value)]
        finally:
            _ffi.lib.ckv_lease_ids_free(ids, count.value)


def _take_entry_list(entries: Any) -> List[Entry]:
    """Copies a ckv_entry_list into Entries and frees it."""
    lib = _ffi.lib
    try:
        return [
            entry_from_native(lib.ckv_entry_list_get(entries, index))
            for index in range(lib.ckv_entry_list_len(entries))
        ]
    finally:
        lib.ckv_entry_list_free(entries)
