//! Watches on NATS against writers that are not coordkv: plain async-nats clients publish
//! straight into the bucket, faster than the feed reads and beyond the per-key history
//! limit, across a kill -9 and restart, while other threads open snapshot watches. The
//! writers' acknowledgements are the record: a watcher must receive every acknowledged
//! write in its scope in order, or end with CANCELED(history lost) at a revision through
//! which it did receive every one; no PROGRESS may claim a revision past a missing write.
//! Each test starts its own server, so it can kill it.

mod common;

use async_nats::jetstream;
use common::{unique_name, NatsServer};
use coordkv::{CancelReason, Event, EventKind, Store, Watch, WatchOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn open(server: &NatsServer, bucket: &str) -> Store {
    open_with_history(server, bucket, 16)
}

fn open_with_history(server: &NatsServer, bucket: &str, history: u32) -> Store {
    let json = format!(
        "{{\"url\": \"{}\", \"bucket\": \"{bucket}\", \"history\": {history}, \
         \"request_timeout_ms\": 2000}}",
        server.url()
    );
    Store::open_json(&json).unwrap()
}

/// A plain NATS client publishing into the bucket's KV subjects.
struct ForeignWriter {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
    bucket: String,
}

impl ForeignWriter {
    fn connect(url: &str, bucket: &str) -> ForeignWriter {
        let runtime = runtime();
        let js = runtime.block_on(async {
            // Quick reconnects, so the time to resume measures coordkv, not this writer.
            let client = async_nats::ConnectOptions::new()
                .reconnect_delay_callback(|_| Duration::from_millis(20))
                .connect(url)
                .await
                .expect("foreign client connects");
            jetstream::new(client)
        });
        ForeignWriter {
            runtime,
            js,
            bucket: bucket.to_string(),
        }
    }

    /// Publishes `values` to the NATS key `nats_key` all at once (pipelined), and returns
    /// the acknowledged revisions.
    fn burst(&self, nats_key: &str, values: impl Iterator<Item = String>) -> Vec<u64> {
        let subject = format!("$KV.{}.{nats_key}", self.bucket);
        self.runtime.block_on(async {
            let mut acks = Vec::new();
            for value in values {
                acks.push(
                    self.js
                        .publish(subject.clone(), value.into())
                        .await
                        .unwrap(),
                );
            }
            let mut revisions = Vec::new();
            for ack in acks {
                revisions.push(ack.await.expect("publish acknowledged").sequence);
            }
            revisions
        })
    }

    /// One write that survives an outage: retried until acknowledged, or given up
    /// (`None`) when `stop` is set.
    fn put_retrying(&self, nats_key: &str, value: String, stop: &AtomicBool) -> Option<u64> {
        let subject = format!("$KV.{}.{nats_key}", self.bucket);
        self.runtime.block_on(async {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                let sent = self.js.publish(subject.clone(), value.clone().into()).await;
                if let Ok(ack) = sent {
                    if let Ok(Ok(ack)) = tokio::time::timeout(Duration::from_secs(2), ack).await {
                        return Some(ack.sequence);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

/// What a watcher received, as a test checks it.
#[derive(Default)]
struct Received {
    data: Vec<u64>,
    /// (revision, data events received before it)
    progress: Vec<(u64, usize)>,
    canceled: Option<(CancelReason, u64)>,
    cancel_message: String,
}

impl Received {
    fn take(&mut self, event: &Event) {
        match event.kind {
            EventKind::Progress => self.progress.push((event.revision, self.data.len())),
            EventKind::Canceled => {
                self.canceled = Some((event.cancel_reason.unwrap(), event.revision));
                self.cancel_message = event.message.clone();
            }
            kind if kind.is_data() => self.data.push(event.revision),
            _ => {}
        }
    }

    /// Reads `watch` until it ends or `quiet` passes without a data event.
    fn drain(watch: &Watch, quiet: Duration) -> Received {
        let mut received = Received::default();
        let mut last_data = Instant::now();
        while received.canceled.is_none() && last_data.elapsed() < quiet {
            if let Ok(event) = watch.next(Some(quiet)) {
                if event.kind.is_data() {
                    last_data = Instant::now();
                }
                received.take(&event);
            }
        }
        received
    }

    /// The guarantees against the acknowledged writes in scope: ordered, no foreign
    /// event, every write through the end (or through CANCELED's revision) received,
    /// every PROGRESS true. Returns whether the watch was complete.
    fn check(&self, label: &str, acked: &BTreeSet<u64>) -> bool {
        assert!(
            self.data.windows(2).all(|w| w[0] < w[1]),
            "{label}: events out of order"
        );
        for revision in &self.data {
            assert!(
                acked.contains(revision),
                "{label}: revision {revision} was never written"
            );
        }
        let through = match self.canceled {
            None => u64::MAX,
            Some((CancelReason::HistoryLost, last)) => last,
            Some((reason, last)) => panic!("{label}: ended with {reason:?} at {last}"),
        };
        let received: BTreeSet<u64> = self.data.iter().copied().collect();
        let missing: Vec<u64> = acked
            .range(..=through)
            .filter(|r| !received.contains(r))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "{label}: silently lost {} acknowledged writes (first {:?}), canceled: {:?}",
            missing.len(),
            missing.first(),
            self.canceled
        );
        for &(revision, before) in &self.progress {
            let owed = acked.range(..=revision).count();
            assert!(
                before >= owed,
                "{label}: PROGRESS({revision}) after {before} events, {owed} were written"
            );
        }
        self.canceled.is_none()
    }
}

#[test]
fn a_burst_beyond_the_history_limit_is_delivered_or_announced() {
    let server = NatsServer::start_default();
    let bucket = unique_name("burst");
    let store = open(&server, &bucket);
    store.put("/b/seed", b"s").unwrap();
    let writer = ForeignWriter::connect(&server.url(), &bucket);
    let (mut complete, mut announced) = (0, 0);
    for round in 0..6 {
        let options = WatchOptions {
            progress_interval: Some(Duration::from_millis(5)),
            ..WatchOptions::default()
        };
        let watch = store.watch("/b/k", options).unwrap();
        let acked: BTreeSet<u64> = writer
            .burst("b.k", (0..100).map(|i| format!("r{round}-{i}")))
            .into_iter()
            .collect();
        let received = Received::drain(&watch, Duration::from_secs(2));
        if received.check(&format!("round {round}"), &acked) {
            assert_eq!(received.data.len(), 100, "round {round}");
            complete += 1;
        } else {
            announced += 1;
        }
    }
    println!("bursts of 100 to one key: {complete} delivered whole, {announced} announced as lost");
}

/// The other side of the checker: where nothing can have been trimmed (fewer writes to a
/// key than its history holds), nothing may be announced as lost, also when the watched
/// key's writes are interleaved with many more to other keys (skips too long to look up).
#[test]
fn nothing_is_announced_lost_when_the_history_holds_every_write() {
    let server = NatsServer::start_default();
    let bucket = unique_name("no_false_loss");
    let store = open_with_history(&server, &bucket, 64);
    store.put("/b/seed", b"s").unwrap();
    let writer = ForeignWriter::connect(&server.url(), &bucket);
    for round in 0..4 {
        let watch = store.watch("/b/k", WatchOptions::default()).unwrap();
        let mut acked = BTreeSet::new();
        acked.extend(writer.burst("b.k", (0..30).map(|i| format!("r{round}-{i}"))));
        for i in 0..30 {
            writer.burst(&format!("b.other{i}"), (0..100).map(|j| format!("{j}")));
            acked.extend(writer.burst("b.k", std::iter::once(format!("r{round}-late{i}"))));
        }
        let received = Received::drain(&watch, Duration::from_secs(2));
        assert!(received.check(&format!("round {round}"), &acked));
        assert_eq!(received.data.len(), acked.len(), "round {round}");
    }
}

#[test]
fn a_resync_watch_ends_with_the_store_s_view() {
    let server = NatsServer::start_default();
    let bucket = unique_name("resync");
    let store = open(&server, &bucket);
    for k in 0..5 {
        store.put(&format!("/r/{k}"), b"initial").unwrap();
    }
    let options = WatchOptions {
        prefix: true,
        snapshot: true,
        resync: true,
        ..WatchOptions::default()
    };
    let watch = store.watch("/r/", options).unwrap();
    let writer = ForeignWriter::connect(&server.url(), &bucket);
    for round in 0..4 {
        for k in 0..5 {
            writer.burst(
                &format!("r.{k}"),
                (0..60).map(|i| format!("{round}-{k}-{i}")),
            );
        }
    }
    store.delete("/r/0", 0).unwrap();
    // The consumer's view: a resync replaces it, everything else updates it.
    let mut view: BTreeMap<String, (u64, Vec<u8>)> = BTreeMap::new();
    let mut resyncs = 0;
    let mut in_resync = false;
    let last = store.last_revision().unwrap();
    let mut synced_through = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while synced_through < last || in_resync {
        assert!(Instant::now() < deadline, "the view never caught up");
        let event = watch.next(Some(Duration::from_secs(10))).unwrap();
        assert_ne!(event.kind, EventKind::Canceled, "{}", event.message);
        if event.resync && !in_resync {
            view.clear();
            in_resync = true;
            resyncs += 1;
        }
        match event.kind {
            EventKind::Synced => {
                in_resync = false;
                synced_through = synced_through.max(event.revision);
            }
            EventKind::Put => {
                let entry = event.entry.unwrap();
                view.insert(
                    entry.key.to_string(),
                    (entry.revision, entry.value.to_vec()),
                );
                synced_through = synced_through.max(event.revision);
            }
            kind if kind.is_data() => {
                view.remove(&*event.entry.unwrap().key);
                synced_through = synced_through.max(event.revision);
            }
            _ => {}
        }
    }
    let store_view: BTreeMap<String, (u64, Vec<u8>)> = store
        .list("/r/")
        .unwrap()
        .into_iter()
        .map(|e| (e.key.to_string(), (e.revision, e.value.to_vec())))
        .collect();
    assert_eq!(view, store_view);
    println!("resync watch: {resyncs} resyncs over 1,200 foreign writes");
}

#[test]
fn a_restart_under_load_resumes_without_gap_or_overflow() {
    let mut server = NatsServer::start_default();
    let bucket = unique_name("restart");
    let store = Arc::new(open(&server, &bucket));
    store.put("/w/seed", b"s").unwrap();
    let watch = Arc::new(
        store
            .watch(
                "/w/",
                WatchOptions {
                    prefix: true,
                    ..WatchOptions::default()
                },
            )
            .unwrap(),
    );
    // The watcher drains as fast as events come, and notes when each arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals: Arc<Mutex<Vec<(Instant, Event)>>> = Arc::default();
    let reader = {
        let (watch, stop, arrivals) = (watch.clone(), stop.clone(), arrivals.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(event) = watch.next(Some(Duration::from_millis(100))) {
                    let ended = event.kind == EventKind::Canceled;
                    arrivals.lock().unwrap().push((Instant::now(), event));
                    if ended {
                        return;
                    }
                }
            }
        })
    };
    // Two foreign writers, 10,000 writes each over 2,000 keys (fewer writes per key than
    // the history limit, so nothing may be trimmed), retried through the outage.
    let acked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let ack_times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (url, bucket, acked, stop) =
                (server.url(), bucket.clone(), acked.clone(), stop.clone());
            let ack_times = ack_times.clone();
            std::thread::spawn(move || {
                let writer = ForeignWriter::connect(&url, &bucket);
                for i in 0..10_000u64 {
                    let key = format!("w.k{}", (i * 7 + w * 1_000) % 2_000);
                    match writer.put_retrying(&key, format!("{w}-{i}"), &stop) {
                        Some(revision) => {
                            ack_times.lock().unwrap().push(Instant::now());
                            acked.lock().unwrap().insert(revision)
                        }
                        None => return,
                    };
                }
            })
        })
        .collect();
    let wait_for = |count: usize| {
        let give_up = Instant::now() + Duration::from_secs(120);
        while acked.lock().unwrap().len() < count {
            assert!(Instant::now() < give_up, "writers stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(8_000);
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    let back = Instant::now();
    for writer in writers {
        writer.join().unwrap();
    }
    let last = *acked.lock().unwrap().last().unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let arrived = arrivals.lock().unwrap();
        let done = arrived.last().is_some_and(|(_, e)| e.revision >= last);
        let ended = arrived.iter().any(|(_, e)| e.kind == EventKind::Canceled);
        if done || ended {
            break;
        }
        drop(arrived);
        assert!(Instant::now() < give_up, "the watcher never reached {last}");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let arrivals = arrivals.lock().unwrap();
    let mut received = Received::default();
    for (_, event) in arrivals.iter() {
        received.take(event);
    }
    assert!(
        received.check("restart", &acked.lock().unwrap()),
        "the watcher ended: {:?}",
        received.canceled
    );
    let first_after = arrivals
        .iter()
        .find(|(at, _)| *at >= back)
        .map(|(at, _)| *at - back);
    let first_ack = ack_times
        .lock()
        .unwrap()
        .iter()
        .find(|at| **at >= back)
        .map(|at| *at - back);
    println!(
        "restart under load: {} events; after the server was back, the first write was \
         acknowledged in {first_ack:?} and the first event arrived in {:?}",
        received.data.len(),
        first_after
    );
}

#[test]
fn snapshot_watches_opened_during_live_traffic_do_not_make_a_watcher_lose_events() {
    let server = NatsServer::start_default();
    let bucket = unique_name("snapshots");
    let store = Arc::new(open(&server, &bucket));
    for k in 0..5_000 {
        store.put(&format!("/s/{k}"), b"value").unwrap();
    }
    let watch = store.watch("/h/k", WatchOptions::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let opener = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut opened = 0;
            while !stop.load(Ordering::Relaxed) {
                let options = WatchOptions {
                    prefix: true,
                    snapshot: true,
                    ..WatchOptions::default()
                };
                let snapshot = store.watch("/s/", options).unwrap();
                let mut values = 0;
                loop {
                    let event = snapshot.next(Some(Duration::from_secs(30))).unwrap();
                    if event.kind == EventKind::Synced {
                        break;
                    }
                    values += 1;
                }
                assert_eq!(values, 5_000);
                opened += 1;
            }
            opened
        })
    };
    // Paced writes (each acknowledged before the next), as a service updating a hot key.
    let writer = ForeignWriter::connect(&server.url(), &bucket);
    let mut acked = BTreeSet::new();
    for i in 0..4_000 {
        acked.extend(writer.burst("h.k", std::iter::once(format!("{i}"))));
    }
    let received = Received::drain(&watch, Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let opened = opener.join().unwrap();
    let complete = received.check("hot key", &acked);
    println!(
        "hot key beside {opened} snapshot watches: {} of {} writes, complete: {complete} {}",
        received.data.len(),
        acked.len(),
        received.cancel_message
    );
}
