"""The nats-py peer: JetStream KV through the official asyncio client, the way a Python
service would use it — one connection, one KeyValue shared by every task, watchers read
with ``updates()``. It is the yardstick for coordkv's Python binding.

Speaks the driver protocol of bench/README.md: ``natspy_driver.py WORKLOAD --url U
--bucket B --n N --threads T --value-size S --watchers W [--sync]``, one JSON result line.
The flags, percentiles and JSON lines are bench/common/harness.py, shared with the coordkv
Python driver.
"""

import asyncio
import os
import sys
import time

import nats
from nats.js.api import KeyValueConfig, StorageType

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common"))
import harness  # noqa: E402
from harness import report, report_fanout, warmup_count  # noqa: E402

A = harness.parse("nats-py")


def key_of(space, i):
    return f"{space}.k{i:08d}"


async def warmup(kv, val):
    for i in range(warmup_count(A.n)):
        await kv.put(key_of("warm", i % 16), val)


async def run_put(kv):
    val = harness.value()
    await warmup(kv, val)
    lat = []
    start = time.perf_counter_ns()
    for i in range(A.n):
        t0 = time.perf_counter_ns()
        await kv.put(key_of("bench", i), val)
        lat.append(time.perf_counter_ns() - t0)
    report(A.n, time.perf_counter_ns() - start, lat)


async def run_get(kv):
    val = harness.value()
    keyspace = min(A.n, 1000)
    for i in range(keyspace):
        await kv.put(key_of("bench", i), val)
    for i in range(warmup_count(A.n)):
        await kv.get(key_of("bench", i % keyspace))
    lat = []
    start = time.perf_counter_ns()
    for i in range(A.n):
        t0 = time.perf_counter_ns()
        entry = await kv.get(key_of("bench", i % keyspace))
        lat.append(time.perf_counter_ns() - t0)
        if len(entry.value) != A.value_size:
            raise RuntimeError(f"get returned {len(entry.value)} bytes")
    report(A.n, time.perf_counter_ns() - start, lat)


async def run_update(kv):
    val = harness.value()
    await warmup(kv, val)
    rev = await kv.put("bench.counter", val)
    lat = []
    start = time.perf_counter_ns()
    for _ in range(A.n):
        t0 = time.perf_counter_ns()
        rev = await kv.update("bench.counter", val, last=rev)
        lat.append(time.perf_counter_ns() - t0)
    report(A.n, time.perf_counter_ns() - start, lat)


async def run_put_concurrent(kv):
    val = harness.value()
    await warmup(kv, val)
    lat = [0] * A.n
    gate = asyncio.Event()

    async def worker(lo, hi):
        await gate.wait()
        for i in range(lo, hi):
            t0 = time.perf_counter_ns()
            await kv.put(key_of("bench", i), val)
            lat[i] = time.perf_counter_ns() - t0

    t = A.threads
    tasks = [asyncio.create_task(worker(A.n * k // t, A.n * (k + 1) // t)) for k in range(t)]
    await asyncio.sleep(0)
    start = time.perf_counter_ns()
    gate.set()
    await asyncio.gather(*tasks)
    report(A.n, time.perf_counter_ns() - start, lat)


async def next_event(watcher):
    """The next data event, skipping the end-of-initial-values marker (None)."""
    while True:
        entry = await watcher.updates(timeout=30)
        if entry is not None:
            return entry


async def run_watch_latency(kv):
    warm = warmup_count(A.n)
    watcher = await kv.watch("bench.>")
    seen = asyncio.Queue()

    async def watch_loop():
        while True:
            entry = await next_event(watcher)
            seen.put_nowait((entry.revision, time.perf_counter_ns()))

    loop_task = asyncio.create_task(watch_loop())
    val = harness.value()
    lat = []
    start = time.perf_counter_ns()
    for i in range(warm + A.n):
        if i == warm:
            start = time.perf_counter_ns()
        t0 = time.perf_counter_ns()
        rev = await kv.put(key_of("bench", i % 64), val)
        while True:
            got_rev, at = await asyncio.wait_for(seen.get(), 30)
            if got_rev >= rev:
                break
        if i >= warm:
            lat.append(at - t0)
    elapsed = time.perf_counter_ns() - start
    loop_task.cancel()
    await watcher.stop()
    report(A.n, elapsed, lat)


async def raise_max_consumers(js):
    """nats-server 2.15 caps every stream at 1000 consumers unless the stream says
    otherwise, and each kv.watch is its own consumer: raise the bucket stream's limit so
    the run measures the client instead of stopping at the cap."""
    if A.watchers < 1000:
        return 0
    info = await js.stream_info(f"KV_{A.bucket}")
    info.config.max_consumers = A.watchers + 16
    await js.update_stream(info.config)
    return A.watchers + 16


async def run_watch_fanout(kv, js):
    val = harness.value()
    await warmup(kv, val)
    raised = await raise_max_consumers(js)
    await harness.phase_async("baseline")
    watchers = [await kv.watch("bench.>") for _ in range(A.watchers)]
    await harness.phase_async("watchers_ready")

    async def drain(watcher):
        for _ in range(A.n):
            await next_event(watcher)
        return time.perf_counter_ns()

    tasks = [asyncio.create_task(drain(w)) for w in watchers]
    start = time.perf_counter_ns()
    for i in range(A.n):
        await kv.put(key_of("bench", i % 64), val)
    last = max(await asyncio.gather(*tasks))
    report_fanout(start, last, raised_max_consumers=raised)


async def main():
    if A.workload not in harness.WORKLOADS:
        harness.unavailable(f"no {A.workload} workload for nats-py")
        return
    if not A.url.startswith("nats://"):
        harness.unavailable(f"nats-py needs a NATS server, not {A.url}")
        return
    nc = await nats.connect(A.url)
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(
        bucket=A.bucket, history=16, storage=StorageType.FILE, replicas=1))
    try:
        if A.workload == "watch_fanout":
            await run_watch_fanout(kv, js)
        else:
            await globals()["run_" + A.workload](kv)
    finally:
        try:
            await js.delete_key_value(A.bucket)
        finally:
            await nc.close()


if __name__ == "__main__":
    harness.run(lambda: asyncio.run(main()))
