"""Leases, TTL keys and quiet writes through the binding, on both backends (the Rust
version is tests/leases.rs): what a membership watcher sees when a node joins (PUT),
leaves (revoke: DELETE) or dies (abandon, or a killed process: EXPIRED).

On NATS every store is opened with a 1 s marker TTL, so that short TTLs are granted as
asked (NATS grants whole seconds, at least the marker TTL) and the tests take seconds.
"""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import coordkv
from coordkv import (
    ClosedError,
    EventKind,
    InvalidArgumentError,
    Lease,
    LeaseInfo,
    LeaseNotFoundError,
    NotFoundError,
    Store,
    UnsupportedError,
    Watch,
)

from conftest import NATS_URL, OpenStore, backend_config

WAIT = 20.0
LEASE_CONFIG = {"marker_ttl_ms": 1000}


def short(backend: str, mem: float, nats: float) -> float:
    """A TTL in seconds: short on mem://, whole seconds on NATS."""
    return mem if backend == "mem" else nats


@pytest.fixture
def store(open_store: OpenStore, backend: str) -> Store:
    """A store that does leases; a NATS server without them (before 2.11.2) skips the
    test, and must say which version it needs."""
    opened = open_store(**LEASE_CONFIG)
    try:
        opened.lease_revoke(opened.lease(1.0))
    except UnsupportedError as unsupported:
        assert backend == "nats" and "2.11.2" in unsupported.message, unsupported
        pytest.skip(f"no leases on this server: {unsupported.message}")
    return opened


def node_keys(count: int) -> List[str]:
    return [f"/nodes/n-{i:03}" for i in range(count)]


def membership_watch(store: Store, quiet_writes: bool = False) -> Watch:
    return store.watch("/nodes/", prefix=True, quiet_writes=quiet_writes, buffer_size=100_000)


def expect_events(watch: Watch, kind: EventKind, keys: List[str]) -> List[int]:
    """The next len(keys) events: each of `kind`, for `keys` in order, revisions rising."""
    revisions = []
    for key in keys:
        event = watch.next(timeout=WAIT)
        assert event is not None, f"no {kind.name} event for {key} within {WAIT} s"
        assert event.kind == kind, event
        assert event.entry is not None and event.entry.key == key, event
        revisions.append(event.revision)
    assert revisions == sorted(set(revisions)), revisions
    return revisions


def test_a_revoked_lease_deletes_its_keys_and_refuses_later_writes(
    store: Store, backend: str
) -> None:
    asked = short(backend, 0.3, 1.5)
    lease = store.lease(asked)
    assert lease.ttl >= asked
    assert lease.id > 0 and not lease.lost and lease.lost_reason is None
    keys = node_keys(10)
    watch = membership_watch(store)
    for key in keys:
        store.put(key, b"up", lease=lease)
    expect_events(watch, EventKind.PUT, keys)
    entry = store.get(keys[0])
    assert (entry.lease, entry.quiet) == (lease.id, False)
    info = store.lease_time_to_live(lease.id, keys=True)
    assert info == LeaseInfo(lease.id, info.ttl, info.remaining, tuple(keys))
    assert info.ttl == lease.ttl and 0 < info.remaining <= info.ttl, info
    assert lease.time_to_live().keys == ()
    assert store.lease_list() == [lease.id]

    lease.revoke()
    expect_events(watch, EventKind.DELETE, keys)
    assert lease.lost, "the holder is told its lease ended"
    assert lease.lost_reason is not None and "revoked" in lease.lost_reason
    assert lease.wait_lost(timeout=0)
    for key in keys:
        with pytest.raises(NotFoundError):
            store.get(key)
    with pytest.raises(LeaseNotFoundError):
        store.put("/nodes/late", b"x", lease=lease)
    with pytest.raises(LeaseNotFoundError):
        store.create("/nodes/late", b"x", lease=lease.id)
    with pytest.raises(LeaseNotFoundError):
        store.update("/nodes/late", b"x", 0, lease=lease.id)
    with pytest.raises(LeaseNotFoundError):
        lease.revoke()
    with pytest.raises(LeaseNotFoundError):
        lease.keep_alive()
    with pytest.raises(LeaseNotFoundError):
        store.lease_time_to_live(lease)
    assert store.lease_list() == []


def test_an_abandoned_lease_expires_its_keys_with_expired_events(
    store: Store, backend: str
) -> None:
    lease = store.lease(short(backend, 0.3, 2.0))
    keys = node_keys(100)
    watch = membership_watch(store)
    for key in keys:
        store.put(key, b"up", lease=lease)
    expect_events(watch, EventKind.PUT, keys)
    abandoned = time.monotonic()
    lease.abandon()
    assert lease.lost, "abandoning tells the holder at once"
    expect_events(watch, EventKind.EXPIRED, keys)
    print(
        f"{backend}: 100 EXPIRED events, the last "
        f"{(time.monotonic() - abandoned) * 1000:.0f} ms after abandon (TTL {lease.ttl} s)"
    )
    for key in keys:
        with pytest.raises(NotFoundError):
            store.get(key)
    assert store.keys("/nodes/") == []
    with pytest.raises(LeaseNotFoundError):
        store.put("/nodes/late", b"x", lease=lease)
    with pytest.raises(LeaseNotFoundError):
        lease.abandon()


def test_keepalive_keeps_keys_for_several_ttls_and_only_quiet_watchers_see_it(
    store: Store, backend: str
) -> None:
    lease = store.lease(short(backend, 0.3, 2.0))
    loud = membership_watch(store)
    quiet = membership_watch(store, quiet_writes=True)
    joined = store.put("/nodes/a", b"up", lease=lease)
    ttls = 5 if backend == "mem" else 4
    deadline = time.monotonic() + lease.ttl * ttls
    writes = 0
    while time.monotonic() < deadline:  # unrelated writes meanwhile
        store.put("/other/k", b"x")
        writes += 1
        time.sleep(0.005)
    assert writes > 0
    entry = store.get("/nodes/a")
    assert entry.value == b"up" and entry.lease == lease.id
    assert not lease.lost
    assert not lease.wait_lost(timeout=0.05)
    assert 0 < lease.keep_alive() <= lease.ttl
    assert 0 < lease.time_to_live().remaining <= lease.ttl

    join = loud.next(timeout=WAIT)
    assert join is not None and (join.kind, join.revision) == (EventKind.PUT, joined)
    assert loud.next(timeout=0.1) is None, "a watcher without quiet_writes sees no keepalive"

    through = store.last_revision()
    first = quiet.next(timeout=WAIT)
    assert first is not None and first.revision == joined and not first.entry.quiet
    refreshes = 0
    while True:
        event = quiet.next(timeout=WAIT)
        assert event is not None and event.kind == EventKind.PUT, event
        assert event.entry.quiet and event.entry.lease == lease.id, event
        assert event.entry.value == b"up"
        refreshes += 1
        if event.revision >= through:
            break
    # About three renewals a TTL; fewer than one and the key would have expired.
    assert refreshes >= ttls, f"{refreshes} keepalive writes in {ttls} TTLs"
    print(f"{backend}: {refreshes} keepalive writes in {ttls} TTLs of {lease.ttl} s")
    lease.revoke()


def test_a_ttl_key_expires_unless_written_again(store: Store, backend: str) -> None:
    ttl = short(backend, 0.3, 1.0)
    watch = store.watch("/t/a")
    first = store.put("/t/a", b"1", ttl=ttl)
    # Rewritten without a TTL before the deadline: the first deadline has no effect.
    store.put("/t/a", b"2")
    time.sleep(ttl * 2)
    assert store.get("/t/a").value == b"2"
    store.put("/t/a", b"3", ttl=ttl)
    kinds = []
    for _ in range(4):
        event = watch.next(timeout=WAIT)
        assert event is not None
        kinds.append(event.kind)
    assert kinds == [EventKind.PUT, EventKind.PUT, EventKind.PUT, EventKind.EXPIRED]
    with pytest.raises(NotFoundError):
        store.get("/t/a")
    # A TTL write keeps only itself: the expiry cannot bring "2" back.
    assert all(entry.revision > first for entry in store.history("/t/a"))
    # create and update take a TTL too.
    created = store.create("/t/c", b"c", ttl=ttl)
    store.update("/t/c", b"d", created, ttl=ttl)
    deadline = time.monotonic() + WAIT
    while "/t/c" in store.keys("/t/"):
        assert time.monotonic() < deadline, "/t/c did not expire"
        time.sleep(0.05)


def test_write_options_are_converted_and_the_core_judges_them(store: Store) -> None:
    lease = store.lease(1.0)
    # The core refuses a lease and a TTL together, not the binding.
    with pytest.raises(InvalidArgumentError) as both:
        store.put("/t/b", b"x", lease=lease, ttl=1.0)
    assert "not both" in both.value.message
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(InvalidArgumentError):
            store.put("/t/b", b"x", ttl=bad)
        with pytest.raises(InvalidArgumentError):
            store.lease(bad)
    # C's ttl_ms 0 means "no TTL", so a zero TTL cannot cross: refused, never dropped.
    with pytest.raises(InvalidArgumentError):
        store.put("/t/b", b"x", ttl=0)
    # A lease TTL of 0 reaches the core, which refuses it.
    with pytest.raises(InvalidArgumentError) as zero:
        store.lease(0)
    assert "greater than zero" in zero.value.message
    for bad_id in (-1, 1 << 64):
        with pytest.raises(InvalidArgumentError):
            store.put("/t/b", b"x", lease=bad_id)
    with pytest.raises(TypeError):
        store.put("/t/b", b"x", ttl="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.put("/t/b", b"x", b"positional")  # type: ignore[misc]
    assert store.keys("/t/") == []
    lease.revoke()


def test_milliseconds_round_up_to_whole_milliseconds() -> None:
    from coordkv.lease import milliseconds

    assert milliseconds(1.1, "ttl") == 1100
    assert milliseconds(0.3, "ttl") == 300
    assert milliseconds(0.0011, "ttl") == 2
    assert milliseconds(1e-9, "ttl") == 1  # positive never becomes "no TTL"
    assert milliseconds(0, "ttl") == 0
    assert milliseconds(2, "ttl") == 2000


def test_quiet_writes_reach_only_watchers_that_ask_and_still_advance_progress(
    store: Store,
) -> None:
    loud = store.watch("/q/a")
    quiet = store.watch("/q/a", quiet_writes=True)
    bookmarks = store.watch("/q/a", progress_interval=0.02)
    revision = store.put("/q/a", b"hush", quiet=True)
    entry = store.get("/q/a")
    assert entry.quiet and entry.lease == 0 and entry.value == b"hush"
    while True:
        event = bookmarks.next(timeout=WAIT)
        assert event is not None and event.kind == EventKind.PROGRESS, event
        if event.revision >= revision:
            break
    heard = quiet.next(timeout=WAIT)
    assert heard is not None and heard.revision == revision and heard.entry.quiet
    loud_put = store.put("/q/a", b"loud")
    event = loud.next(timeout=WAIT)
    assert event is not None and (event.kind, event.revision) == (EventKind.PUT, loud_put)
    assert not event.entry.quiet
    # create and update can be quiet too.
    created = store.create("/q/b", b"1", quiet=True)
    store.update("/q/b", b"2", created, quiet=True)
    assert store.get("/q/b").quiet


def test_the_context_manager_revokes_on_exit(store: Store, backend: str) -> None:
    watch = membership_watch(store)
    with store.lease(short(backend, 0.3, 1.0)) as lease:
        assert isinstance(lease, Lease)
        store.put("/nodes/a", b"up", lease=lease)
        store.put("/nodes/b", b"up", lease=lease.id)
        assert store.lease_list() == [lease.id]
    expect_events(watch, EventKind.PUT, ["/nodes/a", "/nodes/b"])
    expect_events(watch, EventKind.DELETE, ["/nodes/a", "/nodes/b"])
    assert store.keys("/nodes/") == [] and store.lease_list() == []
    assert lease.closed
    with pytest.raises(ClosedError):
        lease.lost  # noqa: B018 - the object is freed; the lease is gone too
    with pytest.raises(LeaseNotFoundError):
        store.lease_revoke(lease.id)

    # A lease that ended inside the block is fine on exit; a failure in it still raises.
    with pytest.raises(RuntimeError):
        with store.lease(1.0) as ended:
            ended.revoke()
            raise RuntimeError("the block's own error")
    assert ended.closed and store.lease_list() == []


def test_lost_is_true_after_revoke_abandon_and_close(
    store: Store, open_store: OpenStore
) -> None:
    revoked = store.lease(1.0)
    abandoned = store.lease(1.0)
    assert not revoked.lost and not abandoned.lost
    assert not revoked.wait_lost(timeout=0.05)
    store.lease_revoke(revoked.id)
    store.lease_abandon(abandoned)
    assert revoked.lost and abandoned.lost
    assert revoked.wait_lost() and abandoned.wait_lost(timeout=-1)

    other = open_store(**LEASE_CONFIG)
    closed_with = other.lease(1.0)
    other.close()
    assert closed_with.lost, "closing the store loses its leases"
    with pytest.raises(ClosedError):
        other.lease_list()


def test_wait_lost_wakes_when_another_thread_revokes(store: Store) -> None:
    lease = store.lease(1.0)
    results: List[bool] = []
    waiter = threading.Thread(target=lambda: results.append(lease.wait_lost(timeout=WAIT)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    lease.revoke()
    waiter.join(WAIT)
    assert results == [True]


def test_closing_a_lease_object_while_another_thread_waits_on_it(store: Store) -> None:
    """close() frees the ckv_lease only once no call is using it: the waiter gets
    ClosedError, never a freed object; the lease itself goes on."""
    lease = store.lease(1.0)
    outcome: List[BaseException] = []

    def wait() -> None:
        try:
            lease.wait_lost()
        except BaseException as raised:  # noqa: BLE001
            outcome.append(raised)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    lease.close()
    lease.close()
    waiter.join(WAIT)
    assert not waiter.is_alive() and len(outcome) == 1
    assert isinstance(outcome[0], ClosedError)
    with pytest.raises(ClosedError):
        lease.wait_lost(timeout=0)
    assert store.lease_list() == [lease.id], "closing the object does not end the lease"
    assert lease.time_to_live().ttl == lease.ttl, "the calls by id still work"
    lease.revoke()


def test_a_collected_lease_object_is_freed_and_the_lease_goes_on(store: Store) -> None:
    calls: List[int] = []
    lease = store.lease(1.0, on_lost=lambda lease_id, reason: calls.append(lease_id))
    lease_id, finalizer = lease.id, lease._finalizer
    del lease
    gc.collect()
    assert not finalizer.alive, "the ckv_lease object was freed"
    assert store.lease_list() == [lease_id]
    # The lost callback outlives the Lease object: it is kept until the lease is lost.
    store.lease_revoke(lease_id)
    assert calls == [lease_id]


def test_the_lost_callback_is_called_once_with_the_reason(
    store: Store, open_store: OpenStore
) -> None:
    calls: List[Tuple[int, str, str]] = []

    def on_lost(lease_id: int, reason: str) -> None:
        calls.append((lease_id, reason, threading.current_thread().name))

    lease = store.lease(1.0, on_lost=on_lost)
    store.put("/nodes/a", b"up", lease=lease)
    assert calls == []
    lease.revoke()
    assert calls == [(lease.id, calls[0][1], threading.current_thread().name)]
    assert "revoked" in calls[0][1], calls
    with pytest.raises(LeaseNotFoundError):
        lease.revoke()
    assert len(calls) == 1

    # Closing the store loses its leases: each callback runs once, inside close().
    other = open_store(**LEASE_CONFIG)
    calls.clear()
    kept = other.lease(1.0, on_lost=on_lost, keep_on_close=True)
    dropped = other.lease(1.0, on_lost=on_lost)
    other.close()
    assert sorted(c[0] for c in calls) == sorted([kept.id, dropped.id])
    assert all("closed" in c[1] for c in calls), calls

    # An exception raised by the callback is kept on the Lease; nothing reaches C.
    def broken(lease_id: int, reason: str) -> None:
        raise ValueError(f"lost {lease_id}")

    failing = store.lease(1.0, on_lost=broken)
    assert failing.error is None
    failing.abandon()
    assert isinstance(failing.error, ValueError)
    assert failing.lost
    with pytest.raises(TypeError):
        store.lease(1.0, on_lost="not callable")  # type: ignore[arg-type]


# ---- several stores on one NATS bucket ----------------------------------------------

needs_nats = pytest.mark.skipif(
    not NATS_URL, reason="needs a NATS server (COORDKV_TEST_NATS_URL)"
)


def shared_config() -> Dict[str, Any]:
    return backend_config("nats", **LEASE_CONFIG)


@pytest.fixture
def shared_stores() -> Iterator[List[Store]]:
    """Two stores on one fresh NATS bucket (what two processes would open)."""
    config = shared_config()
    stores = [Store.open_config(config) for _ in range(2)]
    try:
        lease = stores[0].lease(1.0)
    except UnsupportedError as unsupported:
        for opened in stores:
            opened.close()
        pytest.skip(f"no leases on this server: {unsupported.message}")
    lease.revoke()
    yield stores
    for opened in stores:
        opened.close()


@needs_nats
def test_a_lease_revoked_by_another_store_is_lost_on_the_keepalive_thread(
    shared_stores: List[Store],
) -> None:
    holder, other = shared_stores
    called = threading.Event()
    calls: List[Tuple[int, str]] = []

    def on_lost(lease_id: int, reason: str) -> None:
        calls.append((lease_id, reason))
        called.set()

    lease = holder.lease(1.0, on_lost=on_lost)
    holder.put("/nodes/a", b"up", lease=lease)
    assert other.lease_list() == [lease.id]
    assert other.lease_time_to_live(lease.id, keys=True).keys == ("/nodes/a",)
    other.lease_revoke(lease.id)
    assert called.wait(WAIT), "the holder's keepalive finds the lease gone"
    assert lease.wait_lost(timeout=WAIT)
    assert [c[0] for c in calls] == [lease.id]
    with pytest.raises(NotFoundError):
        holder.get("/nodes/a")


@needs_nats
def test_keep_on_close_leaves_the_lease_to_expire(shared_stores: List[Store]) -> None:
    holder, watcher = shared_stores
    watch = membership_watch(watcher)
    lease = holder.lease(1.0, keep_on_close=True)
    holder.put("/nodes/a", b"up", lease=lease)
    expect_events(watch, EventKind.PUT, ["/nodes/a"])
    holder.close()
    assert lease.lost
    expect_events(watch, EventKind.EXPIRED, ["/nodes/a"])
    wait_until_no_lease(watcher)
    with pytest.raises(LeaseNotFoundError):
        watcher.lease_revoke(lease.id)


def wait_until_no_lease(store: Store) -> None:
    """Until the store lists no lease: a lease nobody keeps alive expires within its TTL."""
    deadline = time.monotonic() + WAIT
    while store.lease_list():
        assert time.monotonic() < deadline, f"leases still live: {store.lease_list()}"
        time.sleep(0.1)


# ---- the acceptance: a killed process's keys expire -------------------------

CHILD = r"""
import json, sys, time
import coordkv

store = coordkv.open_config(json.loads(sys.argv[1]))
lease = store.lease(2.0)
for i in range(100):
    store.put(f"/nodes/n-{i:03}", b"up", lease=lease)
print("ready", lease.id, flush=True)
time.sleep(600)
"""


@needs_nats
def test_the_keys_of_a_killed_process_expire_one_event_each() -> None:
    config = shared_config()
    with Store.open_config(config) as store:
        try:
            store.lease_revoke(store.lease(1.0))
        except UnsupportedError as unsupported:
            pytest.skip(f"no leases on this server: {unsupported.message}")
        watch = membership_watch(store)
        package = Path(coordkv.__file__).resolve().parent.parent
        path = [str(package), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        env.setdefault("COORDKV_LIB", coordkv.library_path())
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(config)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            line = _read_line(child, WAIT)
            assert line.startswith("ready "), line
            lease_id = int(line.split()[1])
            keys = node_keys(100)
            puts = expect_events(watch, EventKind.PUT, keys)
            assert all(store.get(key).lease == lease_id for key in keys[:3])
            assert store.lease_list() == [lease_id]
            killed = time.monotonic()
            child.send_signal(signal.SIGKILL)
            child.wait(WAIT)
            seen: List[str] = []
            revisions: List[int] = []
            while len(seen) < len(keys):
                event = watch.next(timeout=WAIT)
                assert event is not None, f"{len(seen)} EXPIRED events of 100 within {WAIT} s"
                assert event.kind == EventKind.EXPIRED, event
                seen.append(event.entry.key)
                revisions.append(event.revision)
            delay = time.monotonic() - killed
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert sorted(seen) == keys, "one EXPIRED event per key"
        assert revisions == sorted(set(revisions)) and revisions[0] > puts[-1], revisions
        assert store.keys("/nodes/") == []
        print(
            f"nats: 100 EXPIRED events, the last {delay * 1000:.0f} ms after SIGKILL "
            f"(lease TTL 2 s)"
        )
        wait_until_no_lease(store)  # the dead process's lease record expires too


def _read_line(child: "subprocess.Popen[str]", timeout: float) -> str:
    """The child's first line of output, or a failure after `timeout` seconds."""
    lines: List[str] = []
    reader = threading.Thread(target=lambda: lines.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"the child printed nothing within {timeout} s (exit code {child.poll()})"
    return lines[0].strip()
