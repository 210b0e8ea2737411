"""What the Python binding adds to every store operation, on every backend: the types
it takes and gives (str or bytes keys, any bytes-like or str value, frozen entries,
revisions that fit a uint64) and one store shared by threads. The operations' contract
itself is the shared scenarios (test_ops_vectors.py)."""

from __future__ import annotations

import dataclasses
import threading
from typing import List

import pytest

from coordkv import InvalidArgumentError, NotFoundError, Store


@pytest.mark.parametrize(
    "value, stored",
    [
        (b"raw", b"raw"),
        ("text é", "text é".encode("utf-8")),
        (bytearray(b"\x00\x01"), b"\x00\x01"),
        (memoryview(b"view"), b"view"),
        (b"", b""),
        (bytes(range(256)), bytes(range(256))),
    ],
)
def test_values_of_every_accepted_type_round_trip(
    store: Store, value: object, stored: bytes
) -> None:
    store.put("/v", value)  # type: ignore[arg-type]
    assert store.get("/v").value == stored


@pytest.mark.parametrize("value", [1, None, 2.5, ["x"]])
def test_values_of_other_types_are_a_type_error(store: Store, value: object) -> None:
    with pytest.raises(TypeError):
        store.put("/v", value)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.get("/v")


def test_keys_may_be_given_as_bytes_and_come_back_as_str(store: Store) -> None:
    store.put(b"/bytes/key", b"v")
    entry = store.get("/bytes/key")
    assert entry.key == "/bytes/key"
    assert store.get(b"/bytes/key") == entry


def test_keys_of_other_types_are_a_type_error(store: Store) -> None:
    with pytest.raises(TypeError):
        store.put(42, b"v")  # type: ignore[arg-type]


def test_entries_are_frozen(store: Store) -> None:
    store.put("/a", b"v")
    entry = store.get("/a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.value = b"other"  # type: ignore[misc]


@pytest.mark.parametrize("revision", [-1, 1 << 64])
def test_revisions_outside_uint64_are_invalid(store: Store, revision: int) -> None:
    store.put("/cfg", b"1")
    with pytest.raises(InvalidArgumentError):
        store.update("/cfg", b"2", revision)
    with pytest.raises(InvalidArgumentError):
        store.delete("/cfg", revision)
    assert store.get("/cfg").value == b"1"


def test_one_store_shared_by_threads_hands_out_unique_revisions(store: Store) -> None:
    threads_count, writes_each = 8, 25
    results: List[List[int]] = [[] for _ in range(threads_count)]
    start = threading.Barrier(threads_count)

    def writer(index: int) -> None:
        start.wait()
        for n in range(writes_each):
            results[index].append(store.put(f"/t/{index}", str(n)))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [revision for result in results for revision in result]
    assert len(set(every)) == threads_count * writes_each
    assert store.last_revision() == max(every)
    for index in range(threads_count):
        assert store.get(f"/t/{index}").value == str(writes_each - 1).encode()
