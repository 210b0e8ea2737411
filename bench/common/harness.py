"""The Python side of the driver protocol (see bench/README.md), shared by the nats-py peer
and the coordkv Python driver so both parse the same flags, compute the same percentiles
and print the same JSON lines.

The timed loops stay in the drivers: coordkv's binding is called from threads, nats-py
from asyncio tasks, and a shared loop would have to add a call (or a coroutine) per
operation that the two sides would not pay alike.

A driver calls ``parse(driver_name)`` once at import, then reads the flags from ``A``.
"""

import argparse
import asyncio
import json
import math
import sys

WORKLOADS = ("put", "get", "update", "put_concurrent", "watch_latency", "watch_fanout")
A = None          # the parsed flags, once parse() has run
_DRIVER = None


def parse(driver):
    """Parses the command line into A (and returns it); `driver` names the result lines."""
    global A, _DRIVER
    _DRIVER = driver
    p = argparse.ArgumentParser()
    p.add_argument("workload")
    p.add_argument("--url", required=True)
    p.add_argument("--bucket", default="bench")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--value-size", type=int, default=128)
    p.add_argument("--watchers", type=int, default=1)
    p.add_argument("--sync", action="store_true")
    A = p.parse_args()
    return A


def emit(**fields):
    print(json.dumps({"driver": _DRIVER, "workload": A.workload, **fields}), flush=True)


def unavailable(reason):
    """A workload this driver or its backend cannot run."""
    emit(status="unavailable", reason=reason)


def warmup_count(n):
    """How many operations precede a timed loop of n."""
    return min(max(n // 10, 10), 1000)


def value():
    """The value every put writes: A.value_size bytes."""
    return b"v" * A.value_size


def pct_us(sorted_ns, pct):
    """Nearest-rank percentile of sorted nanosecond samples, in microseconds."""
    if not sorted_ns:
        return 0.0
    rank = min(max(math.ceil(pct / 100 * len(sorted_ns)), 1), len(sorted_ns))
    return sorted_ns[rank - 1] / 1000


def report(ops, elapsed_ns, lat, **extra):
    """The "ok" result line; `lat` (nanoseconds) is sorted in place."""
    lat.sort()
    secs = elapsed_ns / 1e9
    emit(status="ok", n=A.n, threads=A.threads, watchers=A.watchers,
         value_size=A.value_size, ops=ops, seconds=secs, ops_per_s=ops / secs,
         p50_us=pct_us(lat, 50), p99_us=pct_us(lat, 99), **extra)


def report_fanout(start_ns, last_ns, **extra):
    """watch_fanout's result: A.n puts delivered to each of A.watchers watchers."""
    events = A.n * A.watchers
    report(A.n, last_ns - start_ns, [], events=events,
           events_per_s=events / ((last_ns - start_ns) / 1e9), **extra)


def _announce(name):
    print(json.dumps({"phase": name}), flush=True)


def _answered(line):
    if not line:  # the harness went away: nothing to measure for
        sys.exit(3)


def phase(name):
    """With --sync: announce a phase and wait for the harness's one-line answer on stdin
    (it samples this process's RSS and the server's consumers meanwhile)."""
    if A.sync:
        _announce(name)
        _answered(sys.stdin.readline())


async def phase_async(name):
    """phase() for an asyncio driver: the event loop keeps running while it waits."""
    if A.sync:
        _announce(name)
        _answered(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))


def run(main):
    """Runs the driver's main(); a failure becomes an "error" result line and exit 1, so the
    harness never parses tracebacks."""
    try:
        main()
    except Exception as e:
        emit(status="error", reason=f"{type(e).__name__}: {e}")
        sys.exit(1)
