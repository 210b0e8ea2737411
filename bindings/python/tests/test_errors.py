"""The error vocabulary: one class per ckv_status, filled from the failing call's own
ckv_error."""

from __future__ import annotations

import ctypes
import pickle
import threading
from typing import List, Optional, Type

import pytest

import coordkv
from coordkv import (
    ERROR_CLASSES,
    CoordkvError,
    NotFoundError,
    Store,
    _ffi,
    errors,
)

EXPECTED_CLASSES = {
    "NOT_FOUND": coordkv.NotFoundError,
    "CONFLICT": coordkv.ConflictError,
    "INVALID_ARGUMENT": coordkv.InvalidArgumentError,
    "TIMEOUT": coordkv.CoordkvTimeoutError,
    "CLOSED": coordkv.ClosedError,
    "UNAVAILABLE": coordkv.UnavailableError,
    "UNAUTHORIZED": coordkv.UnauthorizedError,
    "LIMIT": coordkv.LimitError,
    "UNSUPPORTED": coordkv.UnsupportedError,
    "CANCELED": coordkv.CanceledError,
    "INTERNAL": coordkv.InternalError,
    "PERMISSION_DENIED": coordkv.PermissionDeniedError,
    "LEASE_NOT_FOUND": coordkv.LeaseNotFoundError,
}


def library_statuses() -> dict[int, str]:
    """Every failure status the loaded library has a name for."""
    known = {}
    for code in range(1, 256):
        name = _ffi.lib.ckv_status_name(code).decode("ascii")
        if name != "UNKNOWN":
            known[code] = name
    return known


def test_there_is_exactly_one_class_per_library_status() -> None:
    statuses = library_statuses()
    assert {cls.status: cls for cls in ERROR_CLASSES} == {
        code: EXPECTED_CLASSES[name] for code, name in statuses.items()
    }
    assert len(set(ERROR_CLASSES)) == len(ERROR_CLASSES)
    assert _ffi.lib.ckv_status_name(_ffi.CKV_OK) == b"OK"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_class_is_a_coordkv_error_named_by_its_status(
    cls: Type[CoordkvError],
) -> None:
    assert issubclass(cls, CoordkvError)
    error = cls("message")
    assert EXPECTED_CLASSES[error.status_name] is cls


def test_no_class_shadows_a_builtin() -> None:
    import builtins

    for cls in ERROR_CLASSES:
        assert not hasattr(builtins, cls.__name__), cls.__name__


# A C callback that aborts a read-modify-write with whatever status it is handed as
# user data: the one way to make the real library report any status through err_out.
def _return_user_data(user_data: Optional[int], current: object, result: object) -> int:
    return user_data or _ffi.CKV_INTERNAL


_abort_with_status = _ffi.ckv_rmw_fn(_return_user_data)


@pytest.mark.parametrize("code", sorted(library_statuses()))
def test_every_status_from_the_library_raises_its_class(code: int) -> None:
    with Store.open() as store:
        with pytest.raises(CoordkvError) as raised:
            errors.call(
                _ffi.lib.ckv_read_modify_write,
                store._handle,
                b"/k",
                2,
                _abort_with_status,
                code,
                None,
            )
    error = raised.value
    name = library_statuses()[code]
    assert type(error) is EXPECTED_CLASSES[name]
    assert error.status == code
    assert error.status_name == name
    assert error.message.startswith(f"{name}: ")
    assert str(error) == error.message
    assert error.current_revision == 0


def test_a_status_the_binding_does_not_know_stays_a_coordkv_error() -> None:
    error = errors.error_for(200, "FUTURE: something new")
    assert type(error) is CoordkvError
    assert error.status == 200
    assert error.message == "FUTURE: something new"


def test_errors_survive_pickling_with_their_fields(store: Store) -> None:
    store.put("/a", b"1")
    second = store.put("/a", b"2")
    with pytest.raises(coordkv.ConflictError) as raised:
        store.update("/a", b"3", 1)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is coordkv.ConflictError
    assert (copy.status, copy.message, copy.current_revision) == (
        raised.value.status,
        raised.value.message,
        second,
    )


def test_each_failure_carries_its_own_calls_message(store: Store) -> None:
    """Threads failing at once each get the message of their own call."""
    threads_count, calls_each = 4, 200
    mismatches: List[str] = []
    start = threading.Barrier(threads_count)

    def reader(index: int) -> None:
        start.wait()
        for n in range(calls_each):
            key = f"/thread-{index}/missing-{n}"
            try:
                store.get(key)
            except NotFoundError as error:
                if f'"{key}"' not in error.message:
                    mismatches.append(f"{key}: {error.message}")
            else:
                mismatches.append(f"{key}: no error")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_a_failed_call_leaves_its_output_untouched(
    store: Store,
) -> None:
    entry = ctypes.POINTER(_ffi.ckv_entry)()
    error = ctypes.POINTER(_ffi.ckv_error)()
    status = _ffi.lib.ckv_get(
        store._handle, b"/missing", 8, ctypes.byref(entry), ctypes.byref(error)
    )
    assert status == _ffi.CKV_NOT_FOUND
    assert not entry
    assert error
    with pytest.raises(NotFoundError):
        errors.raise_for(status, error)
