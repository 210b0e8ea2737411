"""Callbacks, close and fork from Python, and the binding's argument edges (issue 9).

Each test that could hang runs its risky part on a thread (or in a child process) with a
deadline, so a regression fails instead of stalling the run. CKV_TEST_ROUNDS and
CKV_TEST_FORKS make the loops longer.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, List

import pytest

import coordkv
from coordkv import EventKind, InvalidArgumentError

ROUNDS = int(os.environ.get("CKV_TEST_ROUNDS", "5"))
FORKS = int(os.environ.get("CKV_TEST_FORKS", "20"))


def finishes(fn: Callable[[], None], seconds: float = 30.0) -> None:
    """Runs fn on a thread; fails the test if it has not returned within `seconds`."""
    errors: List[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung: a close or callback never returned"
    if errors:
        raise errors[0]


def test_two_callbacks_closing_each_others_watch_do_not_deadlock() -> None:
    def rounds() -> None:
        for _ in range(ROUNDS):
            with coordkv.open("mem://") as store:
                watches: List[Any] = [None, None]
                ran = threading.Event()

                def closer(other: int) -> Callable[[coordkv.Event], None]:
                    def callback(event: coordkv.Event) -> None:
                        if event.kind == EventKind.PUT:
                            time.sleep(0.02)
                            watches[other].close()
                            ran.set()

                    return callback

                watches[0] = store.watch_callback("/k", closer(1))
                watches[1] = store.watch_callback("/k", closer(0))
                store.put("/k", b"v")
                assert ran.wait(10)
                watches[0].close()
                watches[1].close()

    finishes(rounds)


def test_owner_close_waits_for_a_callback_that_closed_its_own_watch() -> None:
    def rounds() -> None:
        with coordkv.open("mem://") as store:
            for _ in range(ROUNDS):
                state = {"started": threading.Event(), "finished": False}
                holder: List[Any] = []

                def callback(event: coordkv.Event) -> None:
                    if event.kind != EventKind.PUT:
                        return
                    holder[0].close()  # from inside: returns at once
                    state["started"].set()  # type: ignore[union-attr]
                    time.sleep(0.02)
                    state["finished"] = True

                holder.append(store.watch_callback("/uaf", callback))
                store.put("/uaf", b"v")
                assert state["started"].wait(10)  # type: ignore[union-attr]
                holder[0].close()  # the owner's close: waits for the callback
                assert state["finished"], "close returned while the callback still ran"

    finishes(rounds)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_children_with_callback_watchers_in_the_parent_never_hang() -> None:
    store = coordkv.open("mem://")
    calls = []
    watches = [store.watch_callback(f"/w/{i}", calls.append) for i in range(16)]
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.put(f"/w/{i % 16}", b"x")
            i += 1

    writers = [threading.Thread(target=writer, daemon=True) for _ in range(2)]
    for t in writers:
        t.start()
    hung = failed = 0
    try:
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: new store, callback watch, one put
                code = 1
                try:
                    signal.alarm(20)
                    got = threading.Event()
                    with coordkv.open("mem://") as child_store:
                        w = child_store.watch_callback("/c", lambda e: got.set())
                        child_store.put("/c", b"child")
                        code = 0 if got.wait(10) else 3
                        w.close()
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    status = -1
                    break
                time.sleep(0.005)
            if status == -1 or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM):
                hung += 1
            elif status != 0:
                failed += 1
                print("child wait status", status)
    finally:
        stop.set()
        for t in writers:
            t.join()
        for w in watches:
            w.close()
        store.close()
    assert (hung, failed) == (0, 0)
    assert calls


@pytest.mark.parametrize("url", [None, 123, b"mem://"])
def test_open_with_a_non_str_url_is_a_type_error(url: Any) -> None:
    with pytest.raises(TypeError):
        coordkv.open(url)


def test_huge_and_negative_timeouts_wait_instead_of_wrapping() -> None:
    with coordkv.open("mem://") as store, store.watch("/t") as watch:
        for timeout in (2**64 / 1000, 2**63 / 1000, -1, float("inf")):
            timer = threading.Timer(0.3, lambda: store.put("/t", b"v"))
            timer.start()
            started = time.monotonic()
            event = watch.next(timeout=timeout)
            timer.join()
            assert event is not None and event.kind == EventKind.PUT, timeout
            assert time.monotonic() - started >= 0.25, timeout
        assert watch.next(timeout=0) is None
        with pytest.raises(InvalidArgumentError):
            store.watch("/t", progress_interval=2**64)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGALRM")
def test_keyboard_interrupt_reaches_a_wait_with_a_timeout_promptly() -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with coordkv.open("mem://") as store, store.watch("/k") as watch:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                watch.next(timeout=10)
            assert time.monotonic() - started < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_watch_keeps_its_store_open() -> None:
    watch = coordkv.open("mem://").watch("/a")
    gc.collect()
    assert watch.next(timeout=0) is None  # not CANCELED(STORE_CLOSED)
    watch.close()


def test_keys_may_be_any_bytes_like_object() -> None:
    with coordkv.open("mem://") as store:
        store.put(bytearray(b"/k"), b"v")
        assert store.get(memoryview(b"/k")).value == b"v"
        assert store.keys(bytearray(b"/")) == ["/k"]
