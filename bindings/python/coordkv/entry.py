"""Entries as Python values: what get/list/history return and what watches will carry.

The library owns every ckv_entry; `entry_from_native` copies one into a frozen Entry
while it is still borrowed, so nothing Python keeps ever points into C memory and the
caller can free the C object (or leave the callback) right after.
"""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Any

from . import _ffi


class Operation(enum.IntEnum):
    """What a write did to its key; the values are the CKV_OP_* codes."""

    PUT = _ffi.CKV_OP_PUT
    DELETE = _ffi.CKV_OP_DELETE
    PURGE = _ffi.CKV_OP_PURGE
    EXPIRED = _ffi.CKV_OP_EXPIRED


@dataclass(frozen=True)
class Entry:
    """One write to one key at one store-wide revision."""

    key: str
    value: bytes
    revision: int
    operation: Operation
    timestamp_ns: int
    """When the write was recorded, in nanoseconds since the Unix epoch."""
    lease: int = 0
    """The lease the write was attached to (0: none)."""
    quiet: bool = False
    """Whether the write was quiet (a lease keepalive, or a write with quiet=True)."""


def borrowed_bytes(address: Any, length: int) -> bytes:
    """Copies `length` bytes the library lent us (a c_void_p result) into Python."""
    if length == 0:
        return b""
    return ctypes.string_at(address, length)


def entry_value(entry: Any) -> bytes:
    """Just the value of a borrowed ckv_entry (what a read-modify-write function sees)."""
    length = ctypes.c_size_t()
    address = _ffi.lib.ckv_entry_value(entry, ctypes.byref(length))
    return borrowed_bytes(address, length.value)


def entry_from_native(entry: Any) -> Entry:
    """Copies a borrowed, non-NULL ckv_entry into an Entry."""
    lib = _ffi.lib
    key_length = ctypes.c_size_t()
    key_address = lib.ckv_entry_key(entry, ctypes.byref(key_length))
    return Entry(
        key=borrowed_bytes(key_address, key_length.value).decode("utf-8"),
        value=entry_value(entry),
        revision=lib.ckv_entry_revision(entry),
        operation=Operation(lib.ckv_entry_operation(entry)),
        timestamp_ns=lib.ckv_entry_timestamp_ns(entry),
        lease=lib.ckv_entry_lease(entry),
        quiet=bool(lib.ckv_entry_is_quiet(entry)),
    )
