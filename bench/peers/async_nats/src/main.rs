//! The async-nats peer: JetStream KV used directly from Rust, the way a tokio user would —
//! one client, one `kv::Store` cloned into every task, `kv.watch` streams. It is also the
//! yardstick for watch latency: coordkv's NATS backend sits on this same crate, so the
//! ratio shows what coordkv's layers cost on top of it.
//!
//! Speaks the driver protocol of bench/README.md: `async_nats_driver WORKLOAD --url U
//! --bucket B --n N --threads T --value-size S --watchers W [--sync]`, one JSON result line.

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const DRIVER: &str = "async-nats";

#[derive(Clone)]
struct Args {
    workload: String,
    url: String,
    bucket: String,
    n: usize,
    threads: usize,
    value_size: usize,
    watchers: usize,
    sync: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: async_nats_driver WORKLOAD --url URL [--bucket B] [--n N] [--threads T] \
         [--value-size S] [--watchers W] [--sync]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let workload = it.next().unwrap_or_else(|| usage());
    let mut args = Args {
        workload,
        url: String::new(),
        bucket: "bench".into(),
        n: 1000,
        threads: 1,
        value_size: 128,
        watchers: 1,
        sync: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--sync" {
            args.sync = true;
            continue;
        }
        let val = it.next().unwrap_or_else(|| usage());
        let num = || val.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--url" => args.url = val.clone(),
            "--bucket" => args.bucket = val.clone(),
            "--n" => args.n = num(),
            "--threads" => args.threads = num(),
            "--value-size" => args.value_size = num(),
            "--watchers" => args.watchers = num(),
            _ => usage(),
        }
    }
    if args.url.is_empty() || args.n == 0 || args.threads == 0 || args.watchers == 0 {
        usage()
    }
    args
}

fn warmup_count(n: usize) -> usize {
    (n / 10).clamp(10, 1000)
}

fn key_of(space: &str, i: usize) -> String {
    format!("{space}.k{i:08}")
}

fn value_of(size: usize) -> Bytes {
    Bytes::from(vec![b'v'; size])
}

/// Nearest-rank percentile of sorted nanosecond samples, in microseconds.
fn pct_us(sorted: &[u64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn report(a: &Args, ops: usize, elapsed: Duration, mut lat: Vec<u64>, extra: Map<String, Value>) {
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let mut out = json!({
        "driver": DRIVER, "workload": a.workload, "status": "ok", "n": a.n,
        "threads": a.threads, "watchers": a.watchers, "value_size": a.value_size, "ops": ops,
        "seconds": secs, "ops_per_s": if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        "p50_us": pct_us(&lat, 50.0), "p99_us": pct_us(&lat, 99.0),
    });
    out.as_object_mut().expect("object").extend(extra);
    println!("{out}");
}

fn status_line(a: &Args, status: &str, reason: String) {
    println!(
        "{}",
        json!({"driver": DRIVER, "workload": a.workload, "status": status, "reason": reason})
    );
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// With --sync: announce a phase and wait for the harness's one-line answer on stdin.
async fn phase(a: &Args, stdin: &mut BufReader<tokio::io::Stdin>, name: &str) -> Res<()> {
    if a.sync {
        println!("{}", json!({ "phase": name }));
        let mut line = String::new();
        if stdin.read_line(&mut line).await? == 0 {
            std::process::exit(3);
        }
    }
    Ok(())
}

async fn warmup(a: &Args, kv: &kv::Store) -> Res<()> {
    let val = value_of(a.value_size);
    for i in 0..warmup_count(a.n) {
        kv.put(key_of("warm", i % 16), val.clone()).await?;
    }
    Ok(())
}

async fn run_put(a: &Args, kv: &kv::Store) -> Res<()> {
    let val = value_of(a.value_size);
    warmup(a, kv).await?;
    let mut lat = Vec::with_capacity(a.n);
    let start = Instant::now();
    for i in 0..a.n {
        let t0 = Instant::now();
        kv.put(key_of("bench", i), val.clone()).await?;
        lat.push(t0.elapsed().as_nanos() as u64);
    }
    report(a, a.n, start.elapsed(), lat, Map::new());
    Ok(())
}

async fn run_get(a: &Args, kv: &kv::Store) -> Res<()> {
    let val = value_of(a.value_size);
    let keyspace = a.n.min(1000);
    for i in 0..keyspace {
        kv.put(key_of("bench", i), val.clone()).await?;
    }
    for i in 0..warmup_count(a.n) {
        kv.entry(key_of("bench", i % keyspace)).await?;
    }
    let mut lat = Vec::with_capacity(a.n);
    let start = Instant::now();
    for i in 0..a.n {
        let t0 = Instant::now();
        let entry = kv.entry(key_of("bench", i % keyspace)).await?;
        lat.push(t0.elapsed().as_nanos() as u64);
        match entry {
            Some(e) if e.value.len() == a.value_size => {}
            other => return Err(format!("get returned {other:?}").into()),
        }
    }
    report(a, a.n, start.elapsed(), lat, Map::new());
    Ok(())
}

async fn run_update(a: &Args, kv: &kv::Store) -> Res<()> {
    let val = value_of(a.value_size);
    warmup(a, kv).await?;
    let mut rev = kv.put("bench.counter", val.clone()).await?;
    let mut lat = Vec::with_capacity(a.n);
    let start = Instant::now();
    for _ in 0..a.n {
        let t0 = Instant::now();
        rev = kv.update("bench.counter", val.clone(), rev).await?;
        lat.push(t0.elapsed().as_nanos() as u64);
    }
    report(a, a.n, start.elapsed(), lat, Map::new());
    Ok(())
}

async fn run_put_concurrent(a: &Args, kv: &kv::Store) -> Res<()> {
    warmup(a, kv).await?;
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(a.threads + 1));
    let mut tasks = Vec::new();
    for t in 0..a.threads {
        let (from, to) = (a.n * t / a.threads, a.n * (t + 1) / a.threads);
        let (kv, go, val) = (kv.clone(), go.clone(), value_of(a.value_size));
        tasks.push(tokio::spawn(async move {
            go.wait().await;
            let mut lat = Vec::with_capacity(to - from);
            for i in from..to {
                let t0 = Instant::now();
                kv.put(key_of("bench", i), val.clone()).await?;
                lat.push(t0.elapsed().as_nanos() as u64);
            }
            Ok::<_, kv::PutError>(lat)
        }));
    }
    go.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(a.n);
    for task in tasks {
        lat.extend(task.await??);
    }
    report(a, a.n, start.elapsed(), lat, Map::new());
    Ok(())
}

async fn run_watch_latency(a: &Args, kv: &kv::Store) -> Res<()> {
    let warm = warmup_count(a.n);
    let mut watch = kv.watch("bench.>").await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let watcher = tokio::spawn(async move {
        while let Some(entry) = watch.next().await {
            let seen = Instant::now();
            match entry {
                Ok(e) => {
                    if tx.send((e.revision, seen)).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let val = value_of(a.value_size);
    let mut lat = Vec::with_capacity(a.n);
    let mut start = Instant::now();
    for i in 0..warm + a.n {
        if i == warm {
            start = Instant::now();
        }
        let t0 = Instant::now();
        let rev = kv.put(key_of("bench", i % 64), val.clone()).await?;
        let seen_at = loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((r, at))) if r >= rev => break at,
                Ok(Some(_)) => continue,
                _ => return Err(format!("watcher stopped before revision {rev}").into()),
            }
        };
        if i >= warm {
            lat.push(seen_at.duration_since(t0).as_nanos() as u64);
        }
    }
    let elapsed = start.elapsed();
    watcher.abort();
    report(a, a.n, elapsed, lat, Map::new());
    Ok(())
}

/// nats-server 2.15 caps every stream at 1000 consumers unless the stream says otherwise,
/// and each `kv.watch` is its own consumer: raise the bucket stream's limit so the run
/// measures the client instead of stopping at the cap (reported as "raised_max_consumers").
async fn raise_max_consumers(a: &Args, js: &jetstream::Context) -> Res<i64> {
    if a.watchers < 1000 {
        return Ok(0);
    }
    let mut stream = js.get_stream(format!("KV_{}", a.bucket)).await?;
    let mut config = stream.info().await?.config.clone();
    config.max_consumers = (a.watchers + 16) as i32;
    js.update_stream(config).await?;
    Ok((a.watchers + 16) as i64)
}

async fn run_watch_fanout(
    a: &Args,
    kv: &kv::Store,
    js: &jetstream::Context,
    stdin: &mut BufReader<tokio::io::Stdin>,
) -> Res<()> {
    warmup(a, kv).await?;
    let raised = raise_max_consumers(a, js).await?;
    phase(a, stdin, "baseline").await?;
    let mut watches = Vec::with_capacity(a.watchers);
    for _ in 0..a.watchers {
        watches.push(kv.watch("bench.>").await?);
    }
    phase(a, stdin, "watchers_ready").await?;
    let want = a.n;
    let tasks: Vec<_> = watches
        .into_iter()
        .map(|mut watch| {
            tokio::spawn(async move {
                let mut got = 0;
                while got < want {
                    match watch.next().await {
                        Some(Ok(_)) => got += 1,
                        _ => return None,
                    }
                }
                Some(Instant::now())
            })
        })
        .collect();
    let val = value_of(a.value_size);
    let start = Instant::now();
    for i in 0..a.n {
        kv.put(key_of("bench", i % 64), val.clone()).await?;
    }
    let mut last = start;
    for task in tasks {
        match task.await? {
            Some(done) => last = last.max(done),
            None => return Err("a watcher stopped early".into()),
        }
    }
    let elapsed = last.duration_since(start);
    let events = a.n * a.watchers;
    let mut extra = Map::new();
    extra.insert("events".into(), json!(events));
    extra.insert("raised_max_consumers".into(), json!(raised));
    extra.insert(
        "events_per_s".into(),
        json!(events as f64 / elapsed.as_secs_f64()),
    );
    report(a, a.n, elapsed, Vec::new(), extra);
    Ok(())
}

async fn run(a: &Args) -> Res<()> {
    let client = async_nats::connect(&a.url).await?;
    let js = jetstream::new(client);
    let kv = js
        .create_key_value(kv::Config {
            bucket: a.bucket.clone(),
            history: 16,
            storage: jetstream::stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await?;
    let mut stdin = BufReader::new(tokio::io::stdin());
    let result = match a.workload.as_str() {
        "put" => run_put(a, &kv).await,
        "get" => run_get(a, &kv).await,
        "update" => run_update(a, &kv).await,
        "put_concurrent" => run_put_concurrent(a, &kv).await,
        "watch_latency" => run_watch_latency(a, &kv).await,
        _ => run_watch_fanout(a, &kv, &js, &mut stdin).await,
    };
    js.delete_key_value(&a.bucket).await.ok();
    result
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let known = [
        "put",
        "get",
        "update",
        "put_concurrent",
        "watch_latency",
        "watch_fanout",
    ];
    if !known.contains(&a.workload.as_str()) {
        status_line(
            &a,
            "unavailable",
            format!("no {} workload for async-nats", a.workload),
        );
        return;
    }
    if !a.url.starts_with("nats://") {
        status_line(
            &a,
            "unavailable",
            format!("async-nats needs a NATS server, not {}", a.url),
        );
        return;
    }
    if let Err(e) = run(&a).await {
        status_line(&a, "error", e.to_string());
        std::process::exit(1);
    }
}
