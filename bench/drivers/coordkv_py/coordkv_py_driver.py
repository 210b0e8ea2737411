"""coordkv through its Python binding (bindings/python, ctypes): the same workloads as the
nats-py peer, written the way a Python user of the binding would — one Store shared by
every thread, blocking calls (ctypes drops the GIL while the library works, so threads
are the binding's natural form of concurrency, as asyncio tasks are nats-py's).

The harness points COORDKV_LIB at the library it built and puts bindings/python on the
path. A workload the binding or its backend cannot run yet prints an "unavailable" line.
Speaks the driver protocol of bench/README.md.
"""

import argparse
import json
import math
import sys
import threading
import time

import coordkv

DRIVER = "coordkv-py"
KV_WORKLOADS = ("put", "get", "update", "put_concurrent")
WATCH_WORKLOADS = ("watch_latency", "watch_fanout", "dispatch")


def parse_args():
    p = argparse.ArgumentParser(prog="coordkv_py_driver.py")
    p.add_argument("workload")
    p.add_argument("--url", required=True)
    p.add_argument("--bucket", default="bench")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--value-size", type=int, default=128)
    p.add_argument("--watchers", type=int, default=1)
    p.add_argument("--sync", action="store_true")
    return p.parse_args()


A = parse_args()


def emit(**fields):
    print(json.dumps({"driver": DRIVER, "workload": A.workload, **fields}), flush=True)


def warmup_count(n):
    return min(max(n // 10, 10), 1000)


def key_of(space, i):
    return f"/{space}/k{i:08d}"


def pct_us(sorted_ns, pct):
    """Nearest-rank percentile of sorted nanosecond samples, in microseconds."""
    if not sorted_ns:
        return 0.0
    rank = min(max(math.ceil(pct / 100 * len(sorted_ns)), 1), len(sorted_ns))
    return sorted_ns[rank - 1] / 1000


def report(ops, elapsed_ns, lat, **extra):
    lat.sort()
    secs = elapsed_ns / 1e9
    emit(status="ok", n=A.n, threads=A.threads, watchers=A.watchers,
         value_size=A.value_size, ops=ops, seconds=secs, ops_per_s=ops / secs,
         p50_us=pct_us(lat, 50), p99_us=pct_us(lat, 99), **extra)


def warmup(store, val):
    for i in range(warmup_count(A.n)):
        store.put(key_of("warm", i % 16), val)


def run_put(store):
    val = b"v" * A.value_size
    warmup(store, val)
    lat = []
    start = time.perf_counter_ns()
    for i in range(A.n):
        t0 = time.perf_counter_ns()
        store.put(key_of("bench", i), val)
        lat.append(time.perf_counter_ns() - t0)
    report(A.n, time.perf_counter_ns() - start, lat)


def run_get(store):
    val = b"v" * A.value_size
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
    val = b"v" * A.value_size
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
    val = b"v" * A.value_size
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


def phase(name):
    """With --sync: announce a phase and wait for the harness's one-line answer."""
    if not A.sync:
        return
    print(json.dumps({"phase": name}), flush=True)
    sys.stdin.readline()


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
    val = b"v" * A.value_size
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
    val = b"v" * A.value_size
    warmup(store, val)
    phase("baseline")
    seens = [Seen(A.n) for _ in range(A.watchers)]
    watches = [store.watch_callback("/bench/", s, prefix=True, buffer_size=A.n + 1024)
               for s in seens]
    phase("watchers_ready")
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
    events = A.n * A.watchers
    report(A.n, last - start, [], events=events, events_per_s=events / ((last - start) / 1e9),
           server_consumers=1)


def open_store():
    if A.url.startswith("nats://"):
        return coordkv.open_config({"url": A.url, "bucket": A.bucket, "history": 16,
                                    "storage": "file"})
    return coordkv.open(A.url)


def main():
    if A.workload == "dispatch":
        emit(status="unavailable", reason="dispatch is measured through the C driver")
        return
    if A.workload not in KV_WORKLOADS + WATCH_WORKLOADS:
        emit(status="unavailable", reason=f"no {A.workload} workload for coordkv-py")
        return
    try:
        store = open_store()
    except coordkv.UnsupportedError as e:
        emit(status="unavailable", reason=str(e))
        return
    with store:
        globals()["run_" + A.workload](store)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported as a result line: the harness never parses tracebacks
        emit(status="error", reason=f"{type(e).__name__}: {e}")
        sys.exit(1)
