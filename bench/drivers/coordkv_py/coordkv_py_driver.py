"""coordkv through its Python binding (bindings/python, ctypes): the same workloads as the
nats-py peer, written the way a Python user of the binding would — one Store shared by
every thread, blocking calls (ctypes drops the GIL while the library works, so threads
are the binding's natural form of concurrency, as asyncio tasks are nats-py's).

The harness points COORDKV_LIB at the library it built and puts bindings/python on the
path. A workload the binding or its backend cannot run yet prints an "unavailable" line.
Speaks the driver protocol of bench/README.md; the flags, percentiles and JSON lines are
bench/common/harness.py, shared with the nats-py peer.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common"))
import coordkv  # noqa: E402
import harness  # noqa: E402
from harness import report, report_fanout, warmup_count  # noqa: E402

A = harness.parse("coordkv-py")


def key_of(space, i):
    return f"/{space}/k{i:08d}"


def warmup(store, val):
    for i in range(warmup_count(A.n)):
        store.put(key_of("warm", i % 16), val)


def run_put(store):
    val = harness.value()
    warmup(store, val)
    lat = []
    start = time.perf_counter_ns()
    for i in range(A.n):
        t0 = time.perf_counter_ns()
        store.put(key_of("bench", i), val)
        lat.append(time.perf_counter_ns() - t0)
    report(A.n, time.perf_counter_ns() - start, lat)


def run_get(store):
    val = harness.value()
    keyspace = min(A.n, 1000)
    for i in range(keyspace):
        store.put(key_of("bench", i), val)
    for i in range(warmup_count(A.n)):
        store.get(key_of("bench", i % keyspace))
    lat = []
    start = time.perf_counter_ns()
    for i in range(A.n):
        t0 = time.perf_counter_ns()
        entry = store.get(key_of("bench", i % keyspace))
        lat.append(time.perf_counter_ns() - t0)
        if len(entry.value) != A.value_size:
            raise RuntimeError(f"get returned {len(entry.value)} bytes")
    report(A.n, time.perf_counter_ns() - start, lat)


def run_update(store):
    val = harness.value()
    warmup(store, val)
    rev = store.put("/bench/counter", val)
    lat = []
    start = time.perf_counter_ns()
    for _ in range(A.n):
        t0 = time.perf_counter_ns()
        rev = store.update("/bench/counter", val, rev)
        lat.append(time.perf_counter_ns() - t0)
    report(A.n, time.perf_counter_ns() - start, lat)


def run_put_concurrent(store):
    val = harness.value()
    warmup(store, val)
    lat = [0] * A.n
    t = A.threads
    gate = threading.Barrier(t + 1)
    failures = []

    def worker(lo, hi):
        gate.wait()
        try:
            for i in range(lo, hi):
                t0 = time.perf_counter_ns()
                store.put(key_of("bench", i), val)
                lat[i] = time.perf_counter_ns() - t0
        except Exception as e:  # surfaced below as the run's error
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(A.n * k // t, A.n * (k + 1) // t))
               for k in range(t)]
    for th in threads:
        th.start()
    gate.wait()
    start = time.perf_counter_ns()
    for th in threads:
        th.join()
    if failures:
        raise failures[0]
    report(A.n, time.perf_counter_ns() - start, lat)


class Seen:
    """What a callback watcher has received: data events counted, the newest revision."""

    def __init__(self, want):
        self.want, self.got, self.rev, self.at, self.done_at = want, 0, 0, 0, 0
        self.failed = False
        self.cond = threading.Condition()

    def __call__(self, event):
        now = time.perf_counter_ns()
        if event.kind == coordkv.EventKind.CANCELED:
            with self.cond:
                self.failed = True
                self.cond.notify_all()
            return
        if event.entry is None:
            return
        with self.cond:
            self.got += 1
            self.rev, self.at = event.revision, now
            if self.got == self.want:
                self.done_at = now
            self.cond.notify_all()


def run_watch_latency(store):
    val = harness.value()
    warm = warmup_count(A.n)
    seen = Seen(warm + A.n)
    watch = store.watch_callback("/bench/", seen, prefix=True, buffer_size=warm + A.n + 1024)
    lat = []
    start = 0
    for i in range(warm + A.n):
        if i == warm:
            start = time.perf_counter_ns()
        t0 = time.perf_counter_ns()
        rev = store.put(key_of("bench", i % 64), val)
        with seen.cond:
            while seen.rev < rev and not seen.failed:
                seen.cond.wait()
            if seen.failed:
                raise RuntimeError(f"the watch ended before revision {rev}")
            if i >= warm:
                lat.append(seen.at - t0)
    elapsed = time.perf_counter_ns() - start
    watch.close()
    report(A.n, elapsed, lat)


def run_watch_fanout(store):
    val = harness.value()
    warmup(store, val)
    harness.phase("baseline")
    seens = [Seen(A.n) for _ in range(A.watchers)]
    watches = [store.watch_callback("/bench/", s, prefix=True, buffer_size=A.n + 1024)
               for s in seens]
    harness.phase("watchers_ready")
    start = time.perf_counter_ns()
    for i in range(A.n):
        store.put(key_of("bench", i % 64), val)
    last = start
    for s in seens:
        with s.cond:
            while s.got < s.want and not s.failed:
                s.cond.wait()
            if s.failed:
                raise RuntimeError("a watcher ended early")
            last = max(last, s.done_at)
    for w in watches:
        w.close()
    report_fanout(start, last, server_consumers=1)


def open_store():
    if A.url.startswith("nats://"):
        return coordkv.open_config({"url": A.url, "bucket": A.bucket, "history": 16,
                                    "storage": "file"})
    return coordkv.open(A.url)


def main():
    if A.workload == "dispatch":
        harness.unavailable("dispatch is measured through the C driver")
        return
    if A.workload not in harness.WORKLOADS:
        harness.unavailable(f"no {A.workload} workload for coordkv-py")
        return
    try:
        store = open_store()
    except coordkv.UnsupportedError as e:
        harness.unavailable(str(e))
        return
    with store:
        globals()["run_" + A.workload](store)


if __name__ == "__main__":
    harness.run(main)
