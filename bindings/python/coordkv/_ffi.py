"""The C ABI of libcoordkv as ctypes sees it: one declaration per function of coordkv.h.

Everything the binding asks of the library passes through this module, so it mirrors
include/coordkv.h line for line (names, constants, argument and result types) and holds
no logic beyond finding the shared library. A test compares it with the header, so a
function added there without a declaration here fails the suite instead of being called
with ctypes' guessed int arguments.

Two deliberate departures from a literal transcription, both about how bytes cross:
- input buffers (`const char *` / `const uint8_t *` with a length) are declared as
  c_char_p so Python bytes are passed without a copy; the explicit length makes
  embedded NULs harmless;
- outputs that carry a length (`ckv_entry_key`, `ckv_entry_value`, `ckv_key_list_get`)
  are declared as c_void_p and read with ctypes.string_at(ptr, len), because a c_char_p
  result would stop at the first NUL.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import List, Optional

from ._library_file import LIBRARY_FILE

# ---- opaque handles and objects (never dereferenced from Python) --------------------


class ckv_store(Structure):
    pass


class ckv_entry(Structure):
    pass


class ckv_entry_list(Structure):
    pass


class ckv_key_list(Structure):
    pass


class ckv_error(Structure):
    pass


class ckv_rmw_result(Structure):
    pass


class ckv_watch(Structure):
    pass


class ckv_event(Structure):
    pass


class ckv_watch_options(Structure):
    _fields_ = [
        ("prefix", ctypes.c_bool),
        ("start_revision", c_uint64),
        ("snapshot", ctypes.c_bool),
        ("prev_value", ctypes.c_bool),
        ("ignore_deletes", ctypes.c_bool),
        ("buffer_size", c_size_t),
        ("progress_interval_ms", c_uint64),
        ("resync", ctypes.c_bool),
        ("quiet_writes", ctypes.c_bool),
    ]


class ckv_lease(Structure):
    pass


class ckv_write_options(Structure):
    _fields_ = [
        ("lease", c_uint64),
        ("ttl_ms", c_uint64),
        ("quiet", ctypes.c_bool),
    ]


ckv_status = c_int32
ckv_operation = c_int32
ckv_event_type = c_int32
ckv_cancel_reason = c_int32

# ---- status codes (CKV_*) and operations (CKV_OP_*) ---------------------------------

CKV_OK = 0
CKV_NOT_FOUND = 1
CKV_CONFLICT = 2
CKV_INVALID_ARGUMENT = 3
CKV_TIMEOUT = 4
CKV_CLOSED = 5
CKV_UNAVAILABLE = 6
CKV_UNAUTHORIZED = 7
CKV_LIMIT = 8
CKV_UNSUPPORTED = 9
CKV_CANCELED = 10
CKV_INTERNAL = 11
CKV_PERMISSION_DENIED = 12
CKV_LEASE_NOT_FOUND = 13

CKV_OP_PUT = 1
CKV_OP_DELETE = 2
CKV_OP_PURGE = 3
CKV_OP_EXPIRED = 4

CKV_EVENT_PUT = 1
CKV_EVENT_DELETE = 2
CKV_EVENT_PURGE = 3
CKV_EVENT_EXPIRED = 4
CKV_EVENT_SYNCED = 5
CKV_EVENT_PROGRESS = 6
CKV_EVENT_CANCELED = 7

CKV_CANCEL_CLOSED = 1
CKV_CANCEL_OVERFLOW = 2
CKV_CANCEL_WATCHER_LIMIT = 3
CKV_CANCEL_HISTORY_LOST = 4
CKV_CANCEL_STORE_CLOSED = 5

# ---- callback types -----------------------------------------------------------------

ckv_rmw_fn = CFUNCTYPE(
    ckv_status, c_void_p, POINTER(ckv_entry), POINTER(ckv_rmw_result)
)
ckv_watch_fn = CFUNCTYPE(None, c_void_p, POINTER(ckv_event))
# Declared like every header function (test_ffi checks it); no Python API uses it yet.
ckv_ready_fn = CFUNCTYPE(None, c_void_p)
ckv_lease_lost_fn = CFUNCTYPE(None, c_void_p, c_uint64, c_char_p)


class ckv_lease_options(Structure):
    _fields_ = [
        ("keep_on_close", ctypes.c_bool),
        ("lost", ckv_lease_lost_fn),
        ("user_data", c_void_p),
    ]


# ---- finding the library ------------------------------------------------------------

_PACKAGE_DIR = Path(__file__).resolve().parent


def library_candidates() -> List[Path]:
    """Where the library is looked for, in order (after $COORDKV_LIB).

    First the copy a wheel ships inside the package, then a build in the source tree
    this package sits in (bindings/python/coordkv -> repository root), release first.
    """
    candidates = [_PACKAGE_DIR / "_lib" / LIBRARY_FILE]
    repo = _PACKAGE_DIR.parent.parent.parent
    if (repo / "Cargo.toml").is_file():
        candidates += [
            repo / "target" / "release" / LIBRARY_FILE,
            repo / "target" / "debug" / LIBRARY_FILE,
        ]
    return candidates


def _locate() -> Path:
    explicit = os.environ.get("COORDKV_LIB")
    if explicit:
        # An explicit path that is wrong is an error, never a reason to load another copy.
        path = Path(explicit)
        if not path.is_file():
            raise ImportError(f"COORDKV_LIB={explicit!r} is not a file")
        return path
    for candidate in library_candidates():
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c) for c in library_candidates())
    raise ImportError(
        f"cannot find {LIBRARY_FILE}: set COORDKV_LIB to its path, install a coordkv "
        f"wheel, or run `cargo build` in the repository (searched: {searched})"
    )


LIBRARY_PATH: Path = _locate()
lib = ctypes.CDLL(str(LIBRARY_PATH))


def _declare(name: str, restype: Optional[type], argtypes: List[type]) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = argtypes


_p_store = POINTER(ckv_store)
_pp_store = POINTER(_p_store)
_p_entry = POINTER(ckv_entry)
_p_entry_list = POINTER(ckv_entry_list)
_p_key_list = POINTER(ckv_key_list)
_p_error = POINTER(ckv_error)
_pp_error = POINTER(_p_error)
_p_u64 = POINTER(c_uint64)
_p_size = POINTER(c_size_t)

# Library, statuses, entries, lists, errors.
_declare("ckv_version", c_char_p, [])
_declare("ckv_status_name", c_char_p, [ckv_status])
_declare("ckv_open_handles", None, [POINTER(c_size_t), POINTER(c_size_t)])
_declare("ckv_operation_name", c_char_p, [ckv_operation])
_declare("ckv_entry_key", c_void_p, [_p_entry, _p_size])
_declare("ckv_entry_value", c_void_p, [_p_entry, _p_size])
_declare("ckv_entry_revision", c_uint64, [_p_entry])
_declare("ckv_entry_operation", ckv_operation, [_p_entry])
_declare("ckv_entry_timestamp_ns", c_uint64, [_p_entry])
_declare("ckv_entry_lease", c_uint64, [_p_entry])
_declare("ckv_entry_is_quiet", ctypes.c_bool, [_p_entry])
_declare("ckv_entry_free", None, [_p_entry])
_declare("ckv_entry_list_len", c_size_t, [_p_entry_list])
_declare("ckv_entry_list_get", _p_entry, [_p_entry_list, c_size_t])
_declare("ckv_entry_list_free", None, [_p_entry_list])
_declare("ckv_key_list_len", c_size_t, [_p_key_list])
_declare("ckv_key_list_get", c_void_p, [_p_key_list, c_size_t, _p_size])
_declare("ckv_key_list_free", None, [_p_key_list])
_declare("ckv_error_status", ckv_status, [_p_error])
_declare("ckv_error_message", c_char_p, [_p_error])
_declare("ckv_error_current_revision", c_uint64, [_p_error])
_declare("ckv_error_free", None, [_p_error])

# Stores.
_declare("ckv_open", ckv_status, [c_char_p, _pp_store, _pp_error])
_declare("ckv_open_config", ckv_status, [c_char_p, _pp_store, _pp_error])
_declare("ckv_close", None, [_p_store])
_declare(
    "ckv_put",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_char_p, c_size_t, _p_u64, _pp_error],
)
_declare(
    "ckv_get", ckv_status, [_p_store, c_char_p, c_size_t, POINTER(_p_entry), _pp_error]
)
_declare(
    "ckv_create",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_char_p, c_size_t, _p_u64, _pp_error],
)
_declare(
    "ckv_update",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_char_p, c_size_t, c_uint64, _p_u64, _pp_error],
)
_declare(
    "ckv_delete",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_uint64, _p_u64, _pp_error],
)
_declare("ckv_purge", ckv_status, [_p_store, c_char_p, c_size_t, _p_u64, _pp_error])
_declare(
    "ckv_delete_prefix", ckv_status, [_p_store, c_char_p, c_size_t, _p_u64, _pp_error]
)
_declare(
    "ckv_keys",
    ckv_status,
    [_p_store, c_char_p, c_size_t, POINTER(_p_key_list), _pp_error],
)
_declare(
    "ckv_list",
    ckv_status,
    [_p_store, c_char_p, c_size_t, POINTER(_p_entry_list), _pp_error],
)
_declare(
    "ckv_history",
    ckv_status,
    [_p_store, c_char_p, c_size_t, POINTER(_p_entry_list), _pp_error],
)
_declare("ckv_last_revision", ckv_status, [_p_store, _p_u64, _pp_error])
_declare("ckv_rmw_set_value", ckv_status, [POINTER(ckv_rmw_result), c_char_p, c_size_t])
_declare(
    "ckv_read_modify_write",
    ckv_status,
    [_p_store, c_char_p, c_size_t, ckv_rmw_fn, c_void_p, _p_u64, _pp_error],
)

# Watches and events.
_p_watch = POINTER(ckv_watch)
_p_event = POINTER(ckv_event)
_p_options = POINTER(ckv_watch_options)
_declare("ckv_watch_options_init", None, [_p_options])
_declare(
    "ckv_watch_open",
    ckv_status,
    [_p_store, c_char_p, c_size_t, _p_options, POINTER(_p_watch), _pp_error],
)
_declare(
    "ckv_watch_next",
    ckv_status,
    [_p_watch, ctypes.c_int64, POINTER(_p_event), _pp_error],
)
_declare(
    "ckv_watch_callback",
    ckv_status,
    [
        _p_store,
        c_char_p,
        c_size_t,
        _p_options,
        ckv_watch_fn,
        c_void_p,
        POINTER(_p_watch),
        _pp_error,
    ],
)
_declare(
    "ckv_watch_ready",
    ckv_status,
    [
        _p_store,
        c_char_p,
        c_size_t,
        _p_options,
        ckv_ready_fn,
        c_void_p,
        POINTER(_p_watch),
        _pp_error,
    ],
)
_declare("ckv_watch_close", None, [_p_watch])
_declare("ckv_event_kind_name", c_char_p, [ckv_event_type])
_declare("ckv_cancel_reason_name", c_char_p, [ckv_cancel_reason])
_declare("ckv_event_kind", ckv_event_type, [_p_event])
_declare("ckv_event_revision", c_uint64, [_p_event])
_declare("ckv_event_entry", _p_entry, [_p_event])
_declare("ckv_event_prev_entry", _p_entry, [_p_event])
_declare("ckv_event_cancel_reason", ckv_cancel_reason, [_p_event])
_declare("ckv_event_message", c_char_p, [_p_event])
_declare("ckv_event_is_catch_up", ctypes.c_bool, [_p_event])
_declare("ckv_event_is_resync", ctypes.c_bool, [_p_event])
_declare("ckv_event_free", None, [_p_event])

# Writes with options.
_p_write_options = POINTER(ckv_write_options)
_declare("ckv_write_options_init", None, [_p_write_options])
_declare(
    "ckv_put_with",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_char_p, c_size_t, _p_write_options, _p_u64, _pp_error],
)
_declare(
    "ckv_create_with",
    ckv_status,
    [_p_store, c_char_p, c_size_t, c_char_p, c_size_t, _p_write_options, _p_u64, _pp_error],
)
_declare(
    "ckv_update_with",
    ckv_status,
    [
        _p_store,
        c_char_p,
        c_size_t,
        c_char_p,
        c_size_t,
        c_uint64,
        _p_write_options,
        _p_u64,
        _pp_error,
    ],
)

# Leases.
_p_lease = POINTER(ckv_lease)
_p_lease_options = POINTER(ckv_lease_options)
_declare("ckv_lease_options_init", None, [_p_lease_options])
_declare(
    "ckv_lease_grant",
    ckv_status,
    [_p_store, c_uint64, _p_lease_options, POINTER(_p_lease), _pp_error],
)
_declare("ckv_lease_id", c_uint64, [_p_lease])
_declare("ckv_lease_ttl_ms", c_uint64, [_p_lease])
_declare("ckv_lease_is_lost", ctypes.c_bool, [_p_lease])
_declare("ckv_lease_lost_reason", ctypes.c_char_p, [_p_lease])
_declare("ckv_lease_wait_lost", ckv_status, [_p_lease, ctypes.c_int64])
_declare("ckv_lease_free", None, [_p_lease])
_declare("ckv_lease_revoke", ckv_status, [_p_store, c_uint64, _pp_error])
_declare("ckv_lease_abandon", ckv_status, [_p_store, c_uint64, _pp_error])
_declare("ckv_lease_keep_alive", ckv_status, [_p_store, c_uint64, _p_u64, _pp_error])
_declare(
    "ckv_lease_time_to_live",
    ckv_status,
    [_p_store, c_uint64, _p_u64, _p_u64, POINTER(_p_key_list), _pp_error],
)
_declare(
    "ckv_lease_list",
    ckv_status,
    [_p_store, POINTER(_p_u64), _p_size, _pp_error],
)
_declare("ckv_lease_ids_free", None, [_p_u64, c_size_t])
