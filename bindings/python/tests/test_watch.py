"""Watches through the binding, on every backend: iteration and context managers,
snapshot and SYNCED, exact and prefix scopes, replay, prev values, ignore_deletes,
timeouts, overflow, callbacks (order, closing from inside, exceptions), and store close.

On NATS events arrive asynchronously, so every wait below has a generous timeout and
no test relies on an event being there at once.
"""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import coordkv
from coordkv import CancelReason, Event, EventKind, Store

WAIT = 30.0  # seconds; a bound that only a broken watch reaches


def take(watch: coordkv.Watch, kinds: tuple = ()) -> Event:
    """The next event, skipping PROGRESS unless asked for; fails instead of hanging."""
    while True:
        event = watch.next(timeout=WAIT)
        assert event is not None, "no event within the wait"
        if event.kind != EventKind.PROGRESS or EventKind.PROGRESS in kinds:
            return event


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.002)


def test_iterator_and_context_manager(store: Store) -> None:
    with store.watch("/it/", prefix=True) as watch:
        revisions = [store.put(f"/it/{i}", str(i)) for i in range(3)]
        seen = []
        for event in watch:
            seen.append((event.kind, event.entry.key, event.entry.value, event.revision))
            if len(seen) == 3:
                break
    assert seen == [
        (EventKind.PUT, f"/it/{i}", str(i).encode(), rev) for i, rev in enumerate(revisions)
    ]
    assert watch.closed
    with pytest.raises(coordkv.ClosedError):
        watch.next(timeout=0)
    assert list(watch) == []


def test_snapshot_then_synced_then_live(store: Store) -> None:
    a = store.put("/snap/a", "1")
    b = store.put("/snap/b", "2")
    store.put("/snapshot-not-in-scope", "x")
    with store.watch("/snap/", prefix=True, snapshot=True) as watch:
        first, second, synced = take(watch), take(watch), take(watch)
        assert [(e.kind, e.entry.key, e.revision) for e in (first, second)] == [
            (EventKind.PUT, "/snap/a", a),
            (EventKind.PUT, "/snap/b", b),
        ]
        assert synced.kind == EventKind.SYNCED and synced.revision >= b
        live = store.put("/snap/c", "3")
        event = take(watch)
        assert (event.kind, event.revision) == (EventKind.PUT, live)


def test_snapshot_of_an_empty_range_is_synced(store: Store) -> None:
    with store.watch("/nothing/", prefix=True, snapshot=True) as watch:
        assert take(watch).kind == EventKind.SYNCED


def test_exact_watch_ignores_longer_keys(store: Store) -> None:
    with store.watch("/x/k") as watch:
        store.put("/x/kk", "no")
        store.put("/x/k/child", "no")
        rev = store.put("/x/k", "yes")
        event = take(watch)
        assert (event.entry.key, event.revision) == ("/x/k", rev)
        assert watch.next(timeout=0.2) is None


def test_start_revision_replays_then_continues(store: Store) -> None:
    first = store.put("/r/a", "1")
    store.delete("/r/a")
    store.put("/r/b", "2")
    with store.watch("/r/", prefix=True, start_revision=first) as watch:
        kinds = [take(watch).kind for _ in range(3)]
        assert kinds == [EventKind.PUT, EventKind.DELETE, EventKind.PUT]
        live = store.put("/r/c", "3")
        assert take(watch).revision == live


def test_prev_value_and_ignore_deletes(store: Store) -> None:
    with store.watch("/pv", prev_value=True, ignore_deletes=True) as watch:
        r1 = store.put("/pv", "old")
        store.delete("/pv")
        store.put("/pv", "again")
        r4 = store.put("/pv", "new")
        events = [take(watch) for _ in range(3)]
        assert [e.kind for e in events] == [EventKind.PUT] * 3
        assert events[0].revision == r1 and events[0].prev is None
        assert events[1].prev is None  # the key was deleted before this write
        assert events[2].revision == r4 and events[2].prev.value == b"again"


def test_timeout_returns_none_and_zero_does_not_wait(store: Store) -> None:
    with store.watch("/quiet") as watch:
        assert watch.next(timeout=0) is None
        started = time.monotonic()
        assert watch.next(timeout=0.05) is None
        assert time.monotonic() - started >= 0.04


def test_overflow_cancels_with_the_last_revision(store: Store) -> None:
    slow = store.watch("/of/", prefix=True, buffer_size=4)
    fast = store.watch("/of/", prefix=True)
    revisions = [store.put(f"/of/{i}", "v") for i in range(10)]
    got = [take(fast).revision for _ in range(10)]
    assert got == revisions
    events = [take(slow) for _ in range(5)]
    assert [e.kind for e in events[:4]] == [EventKind.PUT] * 4
    canceled = events[4]
    assert canceled.kind == EventKind.CANCELED
    assert canceled.cancel_reason == CancelReason.OVERFLOW
    assert canceled.revision == events[3].revision
    assert list(slow) == []
    slow.close()
    fast.close()


def test_callback_receives_events_in_order(store: Store) -> None:
    got: List[Event] = []
    watch = store.watch_callback("/cb/", got.append, prefix=True)
    revisions = [store.put(f"/cb/{i}", "v") for i in range(20)]
    wait_for(lambda: len(got) >= 20, "20 callback events")
    watch.close()
    assert [e.revision for e in got] == revisions
    assert watch.error is None


def test_callback_can_close_its_own_watch(store: Store) -> None:
    calls: List[Event] = []
    holder: List[coordkv.Watch] = []

    def on_event(event: Event) -> None:
        calls.append(event)
        holder[0].close()

    holder.append(store.watch_callback("/self/", on_event, prefix=True))
    store.put("/self/a", "1")
    wait_for(lambda: len(calls) >= 1, "the first callback")
    store.put("/self/b", "2")
    time.sleep(0.2)
    assert len(calls) == 1
    assert holder[0].closed


def test_an_exception_in_a_callback_is_kept_and_delivery_goes_on(store: Store) -> None:
    seen: List[int] = []

    def on_event(event: Event) -> None:
        seen.append(event.revision)
        if len(seen) == 1:
            raise ValueError("boom")

    watch = store.watch_callback("/exc", on_event)
    store.put("/exc", "1")
    second = store.put("/exc", "2")
    wait_for(lambda: second in seen, "the second event")
    assert isinstance(watch.error, ValueError)
    watch.close()


def test_close_from_another_thread_while_callbacks_run(store: Store) -> None:
    count = [0]
    lock = threading.Lock()

    def on_event(event: Event) -> None:
        with lock:
            count[0] += 1
        time.sleep(0.001)

    watch = store.watch_callback("/busy/", on_event, prefix=True)
    for i in range(50):
        store.put(f"/busy/{i}", "v")
    wait_for(lambda: count[0] >= 1, "a callback")
    closer = threading.Thread(target=watch.close)
    closer.start()
    closer.join()
    with lock:
        after_close = count[0]
    time.sleep(0.1)
    assert count[0] == after_close  # nothing after close() returned


def test_closing_the_store_ends_watches(open_store) -> None:
    store = open_store()
    watch = store.watch("/end/", prefix=True)
    rev = store.put("/end/a", "1")
    assert take(watch).revision == rev
    store.close()
    canceled = take(watch)
    assert canceled.kind == EventKind.CANCELED
    assert canceled.cancel_reason == CancelReason.STORE_CLOSED
    assert canceled.revision >= rev
    assert list(watch) == []


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(coordkv.InvalidArgumentError):
        store.watch("no-slash")
    with pytest.raises(coordkv.InvalidArgumentError):
        store.watch("/trailing/")
    with pytest.raises(coordkv.InvalidArgumentError):
        store.watch("/k", snapshot=True, start_revision=3)
    with pytest.raises(coordkv.InvalidArgumentError):
        store.watch("/k", buffer_size=0)
    with pytest.raises(TypeError):
        store.watch_callback("/k", "not callable")  # type: ignore[arg-type]


def test_progress_bookmarks(store: Store) -> None:
    with store.watch("/pg/", prefix=True, progress_interval=0.005) as watch:
        rev = store.put("/pg/a", "1")
        put_seen = False
        while True:
            event = take(watch, kinds=(EventKind.PROGRESS,))
            if event.kind == EventKind.PUT:
                assert event.revision == rev
                put_seen = True
                continue
            assert event.kind == EventKind.PROGRESS
            if event.revision >= rev:
                assert put_seen, "a bookmark overtook the event it covers"
                break


def test_resync_replaces_history_lost_with_a_marked_snapshot(open_store) -> None:
    store = open_store(history=2)
    first = store.put("/h/a", b"1")
    store.put("/h/a", b"2")
    third = store.put("/h/a", b"3")  # `first` is no longer retained
    with store.watch("/h/", prefix=True, start_revision=first, resync=True) as watch:
        value = take(watch)
        assert (value.kind, value.resync, value.revision) == (EventKind.PUT, True, third)
        synced = take(watch)
        assert (synced.kind, synced.resync) == (EventKind.SYNCED, True)
        live = store.put("/h/a", b"4")
        event = take(watch)
        assert (event.revision, event.resync) == (live, False)
    # Without resync the same replay ends with HISTORY_LOST.
    with store.watch("/h/", prefix=True, start_revision=first) as watch:
        ended = take(watch)
        assert ended.cancel_reason is CancelReason.HISTORY_LOST
