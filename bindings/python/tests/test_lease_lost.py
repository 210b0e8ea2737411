"""The lease-lost notification through the Python binding when the NATS server is gone for
longer than the TTL, and the lease's keys gone once it is back (issue 11; the Rust version
is tests/nats_leases.rs, a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after).

The test kills its server, so it starts a private one with tests/support/natsd.py: the
executable of NATS_SERVER_BIN (natsd.py's `run` exports it), else the pinned one when it
is already in natsd.py's cache. Without either the test is skipped, unless
COORDKV_REQUIRE_NATS=1, which fails it. Delays are printed, never asserted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, Tuple

import pytest

from coordkv import LeaseNotFoundError, NotFoundError, Store, UnsupportedError

from conftest import REPO

WAIT = 30.0
TTL = 2.0


def load_natsd() -> ModuleType:
    """tests/support/natsd.py, imported by path (it is no package)."""
    path = REPO / "tests" / "support" / "natsd.py"
    spec = importlib.util.spec_from_file_location("coordkv_test_natsd", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


natsd = load_natsd()


def server_binary() -> Path:
    """The nats-server to run: NATS_SERVER_BIN, else the pinned one if natsd.py has it."""
    named = os.environ.get("NATS_SERVER_BIN", "").strip()
    if named:
        return Path(named)
    pinned = natsd.cache_root() / f"nats-server-{natsd.DEFAULT_VERSION}" / "nats-server"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return pinned
    why = (
        "no nats-server: NATS_SERVER_BIN is not set and the pinned "
        f"{natsd.DEFAULT_VERSION} is not in {pinned.parent} "
        "(tests/support/natsd.py run/path provides both)"
    )
    if os.environ.get("COORDKV_REQUIRE_NATS") == "1":
        pytest.fail(f"COORDKV_REQUIRE_NATS=1 but {why}")
    pytest.skip(why)


def spawn(binary: Path, port: int, store_dir: str) -> "subprocess.Popen[bytes]":
    """nats-server with JetStream on 127.0.0.1:port storing into store_dir, once it
    answers (natsd.py's own arguments, as NatsServer.start passes them)."""
    process = subprocess.Popen(
        [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store_dir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        natsd.wait_until_listening(port, process, time.monotonic() + natsd.READY_TIMEOUT_S)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


@pytest.fixture
def server() -> Iterator["natsd.NatsServer"]:
    """A private server, a natsd.NatsServer: stop() kills what runs and removes its dir."""
    binary = server_binary()
    port = natsd.free_port()
    store_dir = tempfile.mkdtemp(prefix="natsd-js-lost-")
    try:
        process = spawn(binary, port, store_dir)
    except BaseException:
        shutil.rmtree(store_dir, ignore_errors=True)
        raise
    started = natsd.NatsServer(process, port, store_dir, binary)
    try:
        yield started
    finally:
        started.stop()


def kill(server: "natsd.NatsServer") -> None:
    """SIGKILL: no shutdown, no flush — a crash."""
    server.process.kill()
    server.process.wait()


def restart(server: "natsd.NatsServer") -> None:
    """Starts the server again on the same port and store dir (after kill)."""
    server.process = spawn(server.binary, server.port, server.store_dir)


def wait_not_found(store: Store, key: str, timeout: float) -> None:
    """Polls until `key` is NOT_FOUND; any other error (the client still reconnecting)
    is retried."""
    deadline = time.monotonic() + timeout
    last = "never asked"
    while True:
        try:
            store.get(key)
            last = f"{key} is still there"
        except NotFoundError:
            return
        except Exception as raised:  # noqa: BLE001 - UNAVAILABLE, TIMEOUT while reconnecting
            last = f"{type(raised).__name__}: {raised}"
        assert time.monotonic() < deadline, f"{key} not gone within {timeout} s: {last}"
        time.sleep(0.1)


def test_a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after(
    server: "natsd.NatsServer",
) -> None:
    config = {
        "url": server.url,
        "bucket": "py_lost",
        "request_timeout_ms": 500,
        "marker_ttl_ms": 1000,
    }
    with Store.open_config(config) as store:
        calls: List[Tuple[int, str]] = []
        called = threading.Event()

        def on_lost(lease_id: int, reason: str) -> None:
            calls.append((lease_id, reason))
            called.set()

        try:
            lease = store.lease(TTL, on_lost=on_lost)
        except UnsupportedError as unsupported:
            assert "2.11.2" in unsupported.message, unsupported
            pytest.skip(f"no leases on this server: {unsupported.message}")
        assert lease.ttl >= TTL
        keys = [f"/l/{i}" for i in range(3)]
        for key in keys:
            store.put(key, b"up", lease=lease)
        assert not lease.wait_lost(timeout=0.5)
        assert not lease.lost and calls == []

        killed = time.monotonic()
        kill(server)
        assert lease.wait_lost(timeout=WAIT), "never told the lease was lost"
        lost_after = time.monotonic() - killed
        assert lease.lost
        # wait_lost can return just before the callback has run on the keepalive thread.
        assert called.wait(5.0), "wait_lost returned but the callback never came"
        called_after = time.monotonic() - killed
        assert len(calls) == 1 and calls[0][0] == lease.id, calls
        reason = calls[0][1]
        assert "could not be renewed" in reason, reason
        assert lease.error is None
        print(
            f"lease lost {lost_after * 1000:.0f} ms after the server went down (callback by "
            f"{called_after * 1000:.0f} ms; TTL {lease.ttl} s): {reason}"
        )

        restarted = time.monotonic()
        restart(server)
        print(f"server back {(time.monotonic() - killed) * 1000:.0f} ms after the kill")
        # The server expires what outlived its TTL during the outage (on recovery).
        for key in keys:
            wait_not_found(store, key, WAIT)
        print(f"keys gone {(time.monotonic() - restarted) * 1000:.0f} ms after the restart")
        with pytest.raises(LeaseNotFoundError):
            store.put("/l/late", b"x", lease=lease)
        lease.close()
    assert len(calls) == 1, f"called again by the close: {calls}"
