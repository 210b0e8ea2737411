"""read_modify_write: Python code running inside a C call, retried on conflicts. (What
it reads and writes alone on a key: the shared scenarios, test_ops_vectors.py.)"""

from __future__ import annotations

import threading
from typing import Callable, List, Optional

import pytest

from coordkv import ConflictError, NotFoundError, Store
from coordkv import store as store_module


def increment(value: Optional[bytes]) -> bytes:
    return str(int(value or b"0") + 1).encode()


def test_a_str_result_is_stored_as_utf8(store: Store) -> None:
    store.read_modify_write("/c", lambda value: "é")
    assert store.get("/c").value == "é".encode("utf-8")


def test_eight_threads_incrementing_end_exact(store: Store) -> None:
    threads_count, increments_each = 8, 25
    start = threading.Barrier(threads_count)
    revisions: List[int] = []
    failures: List[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        try:
            for _ in range(increments_each):
                revision = store.read_modify_write("/counter", increment)
                with lock:
                    revisions.append(revision)
        except BaseException as failure:  # reported below, not lost in the thread
            failures.append(failure)

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    total = threads_count * increments_each
    assert store.get("/counter").value == str(total).encode()
    assert len(set(revisions)) == total
    assert store.get("/counter").revision == max(revisions)


def first_call_races(
    store: Store,
    seen: List[Optional[bytes]],
    answer: Callable[[Optional[bytes]], bytes],
) -> Callable[[Optional[bytes]], bytes]:
    """A modify function for "/c" that records what it is given and, on its first call,
    writes "/c" itself (b"10": the callback may call back into coordkv) before giving
    `answer`'s value, so that write conflicts and the library calls it again."""

    def modify(value: Optional[bytes]) -> bytes:
        seen.append(value)
        if len(seen) == 1:
            store.put("/c", b"10")
        return answer(value)

    return modify


def test_a_conflicting_write_makes_it_call_again_with_the_new_value(
    store: Store,
) -> None:
    store.put("/c", b"1")
    seen: List[Optional[bytes]] = []
    store.read_modify_write("/c", first_call_races(store, seen, increment))
    assert seen == [b"1", b"10"]
    assert store.get("/c").value == b"11"


class Abort(Exception):
    pass


def test_an_exception_in_the_function_is_reraised_and_nothing_written(
    store: Store,
) -> None:
    store.put("/c", b"keep")
    before = store.last_revision()
    failure = Abort("no thanks")

    def modify(value: Optional[bytes]) -> bytes:
        raise failure

    with pytest.raises(Abort) as raised:
        store.read_modify_write("/c", modify)
    assert raised.value is failure
    assert store.last_revision() == before
    assert store.get("/c").value == b"keep"


def test_an_exception_on_a_retry_is_reraised_after_the_conflicting_write(
    store: Store,
) -> None:
    store.put("/c", b"1")
    seen: List[Optional[bytes]] = []

    def mine_then_abort(value: Optional[bytes]) -> bytes:
        if len(seen) > 1:
            raise Abort("second thoughts")
        return b"mine"

    with pytest.raises(Abort, match="second thoughts"):
        store.read_modify_write("/c", first_call_races(store, seen, mine_then_abort))
    assert seen == [b"1", b"10"]
    assert store.get("/c").value == b"10"


def test_a_coordkv_error_inside_the_function_comes_out_unchanged(store: Store) -> None:
    def modify(value: Optional[bytes]) -> bytes:
        return store.get("/absent").value

    with pytest.raises(NotFoundError, match="/absent"):
        store.read_modify_write("/c", modify)
    with pytest.raises(NotFoundError):
        store.get("/c")


class Stop(BaseException):
    """Not an Exception: like KeyboardInterrupt, it must still not be swallowed."""


def test_a_base_exception_inside_the_function_is_not_swallowed(store: Store) -> None:
    def modify(value: Optional[bytes]) -> bytes:
        raise Stop()

    with pytest.raises(Stop):
        store.read_modify_write("/c", modify)
    with pytest.raises(NotFoundError):
        store.get("/c")


def test_returning_something_that_is_not_a_value_is_a_type_error(store: Store) -> None:
    with pytest.raises(TypeError):
        store.read_modify_write("/c", lambda value: 7)  # type: ignore[arg-type,return-value]
    with pytest.raises(NotFoundError):
        store.get("/c")


def test_giving_up_after_bounded_attempts_is_a_conflict_with_the_revision(
    store: Store,
) -> None:
    store.put("/c", b"0")
    calls = 0

    def modify(value: Optional[bytes]) -> bytes:
        nonlocal calls
        calls += 1
        store.put("/c", str(calls))  # every attempt loses to this write
        return b"never"

    with pytest.raises(ConflictError) as raised:
        store.read_modify_write("/c", modify)
    latest = store.get("/c")
    assert latest.value == str(calls).encode()
    assert raised.value.current_revision == latest.revision
    assert calls > 1


def test_no_registration_outlives_its_call(store: Store) -> None:
    def abort(value: Optional[bytes]) -> bytes:
        raise Abort()

    store.read_modify_write("/c", increment)
    with pytest.raises(Abort):
        store.read_modify_write("/c", abort)
    assert store_module._modify_calls._items == {}
