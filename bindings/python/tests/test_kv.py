"""Every store operation, as a user calls it, on every backend."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import List

import pytest

from coordkv import (
    ConflictError,
    Entry,
    InvalidArgumentError,
    LimitError,
    NotFoundError,
    Operation,
    Store,
)

from conftest import OpenStore

CLOCK_SLACK_NS = 5 * 10**9  # the NATS server stamps entries with its own clock


def test_put_then_get_returns_the_entry(store: Store) -> None:
    before = time.time_ns()
    revision = store.put("/nodes/n-1", b"up")
    after = time.time_ns()

    entry = store.get("/nodes/n-1")

    assert entry.key == "/nodes/n-1"
    assert entry.value == b"up"
    assert entry.revision == revision
    assert entry.operation is Operation.PUT
    assert before - CLOCK_SLACK_NS <= entry.timestamp_ns <= after + CLOCK_SLACK_NS


def test_revisions_strictly_increase_across_keys(store: Store) -> None:
    revisions = [store.put(f"/k/{i % 3}", str(i)) for i in range(10)]
    assert revisions == sorted(set(revisions))
    assert revisions[0] >= 1


def test_put_overwrites_and_get_sees_the_latest(store: Store) -> None:
    store.put("/a", "one")
    second = store.put("/a", "two")
    assert store.get("/a").value == b"two"
    assert store.get("/a").revision == second


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


def test_get_of_a_missing_key_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.get("/missing")
    assert raised.value.message.startswith("NOT_FOUND")
    assert "/missing" in raised.value.message


def test_entries_are_frozen(store: Store) -> None:
    store.put("/a", b"v")
    entry = store.get("/a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.value = b"other"  # type: ignore[misc]


def test_create_writes_a_new_key(store: Store) -> None:
    revision = store.create("/lock", b"me")
    assert store.get("/lock").revision == revision


def test_create_over_a_live_key_conflicts_with_its_revision(store: Store) -> None:
    existing = store.put("/lock", b"holder")
    with pytest.raises(ConflictError) as raised:
        store.create("/lock", b"me")
    assert raised.value.current_revision == existing
    assert store.get("/lock").value == b"holder"


def test_create_over_a_tombstone_succeeds(store: Store) -> None:
    store.put("/lock", b"old")
    store.delete("/lock")
    revision = store.create("/lock", b"new")
    assert store.get("/lock").revision == revision
    assert store.get("/lock").value == b"new"


def test_update_at_the_latest_revision_writes(store: Store) -> None:
    first = store.put("/cfg", b"1")
    second = store.update("/cfg", b"2", first)
    assert second > first
    assert store.get("/cfg").value == b"2"


def test_update_at_a_stale_revision_conflicts_with_the_current_one(
    store: Store,
) -> None:
    first = store.put("/cfg", b"1")
    second = store.put("/cfg", b"2")
    with pytest.raises(ConflictError) as raised:
        store.update("/cfg", b"3", first)
    assert raised.value.current_revision == second
    assert store.get("/cfg").value == b"2"
    # The revision carried by the conflict is enough to retry without another read.
    store.update("/cfg", b"3", raised.value.current_revision)
    assert store.get("/cfg").value == b"3"


@pytest.mark.parametrize("revision", [-1, 1 << 64])
def test_revisions_outside_uint64_are_invalid(store: Store, revision: int) -> None:
    store.put("/cfg", b"1")
    with pytest.raises(InvalidArgumentError):
        store.update("/cfg", b"2", revision)
    with pytest.raises(InvalidArgumentError):
        store.delete("/cfg", revision)
    assert store.get("/cfg").value == b"1"


def test_delete_leaves_a_tombstone_and_get_is_not_found(store: Store) -> None:
    written = store.put("/a", b"v")
    tombstone = store.delete("/a")
    assert tombstone > written
    with pytest.raises(NotFoundError):
        store.get("/a")
    assert [e.operation for e in store.history("/a")] == [
        Operation.PUT,
        Operation.DELETE,
    ]
    assert store.history("/a")[-1].revision == tombstone


def test_delete_of_an_absent_key_still_writes_a_tombstone(store: Store) -> None:
    tombstone = store.delete("/never")
    assert tombstone == store.last_revision()
    with pytest.raises(NotFoundError):
        store.get("/never")


def test_conditional_delete(store: Store) -> None:
    first = store.put("/a", b"1")
    second = store.put("/a", b"2")
    with pytest.raises(ConflictError) as raised:
        store.delete("/a", first)
    assert raised.value.current_revision == second
    assert store.get("/a").value == b"2"
    store.delete("/a", second)
    with pytest.raises(NotFoundError):
        store.get("/a")


def test_purge_drops_history_leaving_one_marker(store: Store) -> None:
    store.put("/a", b"1")
    store.put("/a", b"2")
    marker = store.purge("/a")
    with pytest.raises(NotFoundError):
        store.get("/a")
    history = store.history("/a")
    assert [(e.operation, e.revision) for e in history] == [(Operation.PURGE, marker)]
    assert "/a" not in store.keys("/")
    store.create("/a", b"again")
    assert store.get("/a").value == b"again"


def test_delete_prefix_deletes_only_live_keys_under_it(store: Store) -> None:
    for key in ["/jobs/1", "/jobs/2", "/jobs/3", "/jobsx", "/other"]:
        store.put(key, b"v")
    store.delete("/jobs/3")

    assert store.delete_prefix("/jobs/") == 2

    assert store.keys("/") == ["/jobsx", "/other"]
    assert store.history("/jobs/1")[-1].operation is Operation.DELETE


def test_delete_prefix_of_nothing_is_zero(store: Store) -> None:
    store.put("/a", b"v")
    assert store.delete_prefix("/nothing/") == 0
    assert store.keys("/") == ["/a"]


def test_keys_are_sorted_live_and_under_the_prefix(store: Store) -> None:
    for key in ["/n/c", "/n/a", "/n/b", "/nb", "/m"]:
        store.put(key, b"v")
    store.delete("/n/b")
    assert store.keys("/n/") == ["/n/a", "/n/c"]
    assert store.keys("/n") == ["/n/a", "/n/c", "/nb"]
    assert store.keys() == ["/m", "/n/a", "/n/c", "/nb"]
    assert store.keys("/zzz/") == []


def test_list_returns_live_entries_sorted_by_key(store: Store) -> None:
    written = {key: store.put(key, key.upper()) for key in ["/s/b", "/s/a", "/s/c"]}
    store.delete("/s/c")
    entries: List[Entry] = store.list("/s/")
    assert [(e.key, e.value, e.revision) for e in entries] == [
        ("/s/a", b"/S/A", written["/s/a"]),
        ("/s/b", b"/S/B", written["/s/b"]),
    ]
    assert all(e.operation is Operation.PUT for e in entries)


def test_history_is_oldest_first_with_every_write(store: Store) -> None:
    revisions = [store.put("/h", b"1"), store.put("/h", b"2")]
    revisions.append(store.delete("/h"))
    revisions.append(store.put("/h", b"3"))
    history = store.history("/h")
    assert [e.revision for e in history] == revisions
    assert [e.value for e in history] == [b"1", b"2", b"", b"3"]
    assert [e.operation for e in history] == [
        Operation.PUT,
        Operation.PUT,
        Operation.DELETE,
        Operation.PUT,
    ]


def test_history_of_a_never_written_key_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.history("/never")


def test_last_revision_follows_the_writes(store: Store) -> None:
    assert store.last_revision() == 0
    store.put("/a", b"1")
    latest = store.put("/b", b"2")
    assert store.last_revision() == latest
    latest = store.delete("/a")
    assert store.last_revision() == latest


def test_a_value_over_max_value_size_is_a_limit_error(open_store: OpenStore) -> None:
    store = open_store(max_value_size=64)
    store.put("/fits", b"x" * 64)
    with pytest.raises(LimitError):
        store.put("/too-big", b"x" * 65)
    with pytest.raises(LimitError):
        store.create("/too-big", b"x" * 65)
    with pytest.raises(NotFoundError):
        store.get("/too-big")
    assert store.get("/fits").value == b"x" * 64


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
