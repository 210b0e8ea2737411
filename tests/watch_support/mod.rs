//! Shared support for the watch tests: waiting helpers, and the guarantee checker that
//! records many watchers and replays the store's own history against them. Which stores
//! the tests run on comes from `common::test_stores_with`.
//!
//! The checker is generic over a `Store`: it only uses the public API (`watch`,
//! `history`, `last_revision`), so the same checks run on `mem://` and on NATS.

#![allow(dead_code)]

use coordkv::{Entry, Event, EventKind, Store, Watch, WatchOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A value changed in one expression: `prefix().with(|o| o.snapshot = true)`.
pub trait With: Sized {
    fn with(self, change: impl FnOnce(&mut Self)) -> Self;
}

impl With for WatchOptions {
    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }
}

/// The pseudo-random numbers a load writer draws from (xorshift64), from `seed`.
pub fn random_stream(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

/// Key number `n` of `keys`, in two subtrees so prefixes select a part of the traffic.
pub fn load_key(n: u64, keys: u64) -> String {
    let k = n % keys;
    if k % 3 == 0 {
        format!("/other/{k}")
    } else {
        format!("/k/{k}")
    }
}

/// A watcher of the load tests: label, target, options, and whether it takes its events
/// by callback (else a thread polls it).
pub type Spec = (&'static str, &'static str, WatchOptions, bool);

/// Watch options from words, for the load tests' tables of watchers: "prefix",
/// "snapshot", "prev", "ignore_deletes", "from=<revision>", "progress=<ms>". The buffer
/// is big enough for any load: these watchers must never overflow.
pub fn options(words: &str) -> WatchOptions {
    let mut o = WatchOptions::default().with(|o| o.buffer_size = 1 << 20);
    for word in words.split_whitespace() {
        let number = || word.split_once('=').unwrap().1.parse::<u64>().unwrap();
        match word.split_once('=').map_or(word, |(name, _)| name) {
            "prefix" => o.prefix = true,
            "snapshot" => o.snapshot = true,
            "prev" => o.prev_value = true,
            "ignore_deletes" => o.ignore_deletes = true,
            "from" => o.start_revision = number(),
            "progress" => o.progress_interval = Some(Duration::from_millis(number())),
            _ => panic!("no watch option {word:?}"),
        }
    }
    o
}

/// A polled watch that must open.
pub fn open_watch(store: &Store, target: &str, options: WatchOptions) -> Watch {
    store
        .watch(target, options)
        .unwrap_or_else(|e| panic!("watch {target}: {e}"))
}

/// Waits for `condition`, failing the test (not timing it) if it never comes true.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while !condition() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Takes events from a polled watch until `stop` says so; fails on a timeout.
pub fn next_event(watch: &Watch) -> Event {
    watch
        .next(Some(Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("no event on {}: {e}", watch.target()))
}

/// One recorded watcher: what it asked for and everything it received, in order.
pub struct Recorder {
    pub label: String,
    pub target: String,
    pub options: WatchOptions,
    pub events: Arc<Mutex<Vec<Event>>>,
    pub watch: Arc<Watch>,
    /// The store's last revision just before and just after the watch was opened.
    pub before: u64,
    pub after: u64,
    consumer: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Opens a watch and records its events, polled by a thread of its own or, with
    /// `callback`, through the delivery pool.
    pub fn start(
        store: &Store,
        label: &str,
        target: &str,
        options: WatchOptions,
        callback: bool,
    ) -> Recorder {
        let events = Arc::new(Mutex::new(Vec::new()));
        let before = store.last_revision().unwrap();
        let (watch, consumer) = if callback {
            let sink = events.clone();
            let watch = store
                .watch_callback(target, options.clone(), move |e: &Event| {
                    sink.lock().unwrap().push(e.clone())
                })
                .unwrap_or_else(|e| panic!("{label}: watch fails: {e}"));
            (Arc::new(watch), None)
        } else {
            let watch = Arc::new(
                store
                    .watch(target, options.clone())
                    .unwrap_or_else(|e| panic!("{label}: watch fails: {e}")),
            );
            let (w, sink) = (watch.clone(), events.clone());
            let consumer = std::thread::spawn(move || {
                while let Ok(event) = w.next(None) {
                    sink.lock().unwrap().push(event);
                }
            });
            (watch, Some(consumer))
        };
        let after = store.last_revision().unwrap();
        Recorder {
            label: label.to_string(),
            target: target.to_string(),
            options,
            events,
            watch,
            before,
            after,
            consumer,
        }
    }

    pub fn matches(&self, key: &str) -> bool {
        if self.options.prefix {
            key.starts_with(&self.target)
        } else {
            key == self.target
        }
    }

    /// A key this watcher must see (used to write a sentinel).
    pub fn sentinel_key(&self) -> String {
        if self.options.prefix {
            format!("{}zz-sentinel", self.target)
        } else {
            self.target.clone()
        }
    }

    /// Whether a data event at or after `revision` arrived; a CANCELED fails the test.
    pub fn has_data_at_or_after(&self, revision: u64) -> bool {
        let events = self.events.lock().unwrap();
        if let Some(c) = events.iter().find(|e| e.kind == EventKind::Canceled) {
            panic!(
                "{}: unexpected CANCELED: {:?} {}",
                self.label, c.cancel_reason, c.message
            );
        }
        events
            .iter()
            .any(|e| e.kind.is_data() && e.revision >= revision)
    }

    pub fn stop(mut self) -> Vec<Event> {
        self.watch.close();
        if let Some(consumer) = self.consumer.take() {
            consumer.join().unwrap();
        }
        let events = self.events.lock().unwrap().clone();
        events
    }
}

/// The store's complete history, oldest first, read back through `history`. Fails if the
/// store no longer retains every revision (the test must size `history` for its writes).
pub fn full_log(store: &Store, keys: &BTreeSet<String>) -> Vec<Entry> {
    let log = full_log_without_count(store, keys);
    let last = store.last_revision().unwrap();
    assert_eq!(
        log.len() as u64,
        last,
        "the store must retain every revision for the checker to replay it"
    );
    log
}

/// The retained history of `keys`, in revision order (not checked to be complete).
pub fn full_log_without_count(store: &Store, keys: &BTreeSet<String>) -> Vec<Entry> {
    let mut log: Vec<Entry> = keys
        .iter()
        .flat_map(|k| store.history(k).unwrap_or_default())
        .collect();
    log.sort_by_key(|e| e.revision);
    log
}

/// Ends a load test: writes each recorder's own sentinel key, waits until each recorder
/// has seen its sentinel, then checks every recorder against the store's full history
/// through its sentinel. `keys` are the keys written so far; `context` starts messages.
pub fn check_through_sentinels(
    store: &Store,
    recorders: Vec<Recorder>,
    keys: BTreeSet<String>,
    context: &str,
) {
    check_through_sentinels_with(store, recorders, keys, context, full_log)
}

/// `check_through_sentinels` with the store's history read by `log_of` (for loads whose
/// keys do not keep every revision themselves, such as keys that expire).
pub fn check_through_sentinels_with(
    store: &Store,
    recorders: Vec<Recorder>,
    mut keys: BTreeSet<String>,
    context: &str,
    log_of: impl FnOnce(&Store, &BTreeSet<String>) -> Vec<Entry>,
) {
    let sentinels: Vec<u64> = recorders
        .iter()
        .map(|r| {
            let key = r.sentinel_key();
            keys.insert(key.clone());
            store.put(&key, b"sentinel").unwrap()
        })
        .collect();
    for (r, &s) in recorders.iter().zip(&sentinels) {
        eventually(&format!("{context} {}: its sentinel", r.label), || {
            r.has_data_at_or_after(s)
        });
    }
    let log = log_of(store, &keys);
    for (r, s) in recorders.into_iter().zip(sentinels) {
        let (label, view) = r.finish();
        check(&format!("{context} {label}"), &view, &log, s);
    }
}

fn same_entry(a: &Entry, b: &Entry) -> bool {
    a.key == b.key && a.value == b.value && a.revision == b.revision && a.operation == b.operation
}

/// Checks one recorder's events up to and including revision `through` against `log`:
/// ordered, unique, no gap, SYNCED complete, PROGRESS meaningful, prev values right.
pub fn check(recorder_label: &str, r: &RecorderView, log: &[Entry], through: u64) {
    let label = recorder_label;
    let wanted = |e: &Entry| r.matches(&e.key) && (e.is_live() || !r.options.ignore_deletes);
    let events: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| e.revision <= through || !e.kind.is_data())
        .collect();

    // Ordered and unique: data revisions strictly increase.
    let data: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| e.kind.is_data())
        .collect();
    let seam;
    if r.options.snapshot {
        let synced: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EventKind::Synced)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(synced.len(), 1, "{label}: exactly one SYNCED");
        let at = events[synced[0]].revision;
        seam = at;
        let mut live_at: BTreeMap<&str, &Entry> = BTreeMap::new();
        for e in log.iter().filter(|e| e.revision <= at && r.matches(&e.key)) {
            if e.is_live() {
                live_at.insert(&e.key, e);
            } else {
                live_at.remove(&*e.key);
            }
        }
        let snapshot = &events[..synced[0]];
        assert_eq!(
            snapshot.len(),
            live_at.len(),
            "{label}: SYNCED({at}) after {} values, {} keys were live",
            snapshot.len(),
            live_at.len()
        );
        for e in snapshot {
            assert_eq!(
                e.kind,
                EventKind::Put,
                "{label}: snapshot holds values only"
            );
            let entry = e.entry.as_ref().unwrap();
            let live = live_at
                .get(&*entry.key)
                .unwrap_or_else(|| panic!("{label}: snapshot sent {:?}, not live", entry.key));
            assert!(
                same_entry(entry, live),
                "{label}: snapshot value of {:?}",
                entry.key
            );
        }
        let after: Vec<&Event> = data.iter().copied().skip(snapshot.len()).collect();
        let expected: Vec<&Entry> = log
            .iter()
            .filter(|e| e.revision > at && e.revision <= through && wanted(e))
            .collect();
        compare(label, &after, &expected);
    } else {
        for w in data.windows(2) {
            assert!(
                w[0].revision < w[1].revision,
                "{label}: out of order or repeated"
            );
        }
        let from = if r.options.start_revision != 0 {
            r.options.start_revision
        } else {
            // A live watch starts somewhere in [before, after]: everything after `after`
            // must be there, nothing at or before `before`, and no hole in between.
            let first = data.first().map_or(r.after + 1, |e| e.revision);
            assert!(
                first > r.before,
                "{label}: got revision {first} from before the watch"
            );
            let missed = log
                .iter()
                .filter(|e| e.revision > r.after && e.revision < first && wanted(e))
                .count();
            assert_eq!(
                missed, 0,
                "{label}: missed writes made after the watch was opened"
            );
            first
        };
        seam = from.saturating_sub(1);
        let expected: Vec<&Entry> = log
            .iter()
            .filter(|e| e.revision >= from && e.revision <= through && wanted(e))
            .collect();
        compare(label, &data, &expected);
    }

    // PROGRESS(p): every wanted event in (seam, p] came before it; bookmarks never go back.
    let wanted_revisions: Vec<u64> = log
        .iter()
        .filter(|x| x.revision > seam && x.revision <= through && wanted(x))
        .map(|x| x.revision)
        .collect();
    let mut delivered = 0usize;
    let mut last_progress = 0;
    let mut progress_seen = 0;
    let mut in_snapshot = r.options.snapshot;
    for e in &events {
        match e.kind {
            EventKind::Synced => in_snapshot = false,
            EventKind::Progress => {
                assert!(!in_snapshot, "{label}: PROGRESS inside the snapshot");
                assert!(e.revision >= last_progress, "{label}: PROGRESS went back");
                last_progress = e.revision;
                progress_seen += 1;
                let owed = wanted_revisions.partition_point(|&rev| rev <= e.revision);
                assert_eq!(
                    delivered, owed,
                    "{label}: PROGRESS({}) came before all events it covers",
                    e.revision
                );
            }
            k if k.is_data() && !in_snapshot => delivered += 1,
            _ => {}
        }
    }
    if r.options.progress_interval.is_some() {
        assert!(progress_seen > 0, "{label}: asked for PROGRESS, got none");
    }

    // prev_value: the key's previous retained entry when it was a live value.
    if r.options.prev_value {
        let mut previous: BTreeMap<u64, Option<&Entry>> = BTreeMap::new();
        let mut latest: BTreeMap<&str, &Entry> = BTreeMap::new();
        for x in log {
            previous.insert(x.revision, latest.get(&*x.key).copied());
            latest.insert(&x.key, x);
        }
        for e in data.iter().filter(|e| e.revision > seam) {
            let before = previous[&e.revision].filter(|x| x.is_live());
            match (before, &e.prev) {
                (None, None) => {}
                (Some(b), Some(p)) => assert!(same_entry(b, p), "{label}: wrong prev value"),
                (b, p) => panic!("{label}: prev of {} is {p:?}, expected {b:?}", e.revision),
            }
        }
    }
}

fn compare(label: &str, got: &[&Event], expected: &[&Entry]) {
    for (i, (g, x)) in got.iter().zip(expected.iter()).enumerate() {
        let entry = g.entry.as_ref().expect("data events carry their entry");
        assert!(
            same_entry(entry, x) && g.kind == EventKind::of(x.operation),
            "{label}: event #{i} is revision {} of {:?}, expected revision {} of {:?}",
            entry.revision,
            entry.key,
            x.revision,
            x.key
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "{label}: received {} events, the history has {}",
        got.len(),
        expected.len()
    );
}

/// What `check` needs of a recorder once it is stopped.
pub struct RecorderView {
    pub target: String,
    pub options: WatchOptions,
    pub events: Vec<Event>,
    pub before: u64,
    pub after: u64,
}

impl RecorderView {
    pub fn matches(&self, key: &str) -> bool {
        if self.options.prefix {
            key.starts_with(&self.target)
        } else {
            key == self.target
        }
    }
}

impl Recorder {
    pub fn finish(self) -> (String, RecorderView) {
        let label = self.label.clone();
        let (target, options, before, after) = (
            self.target.clone(),
            self.options.clone(),
            self.before,
            self.after,
        );
        let events = self.stop();
        (
            label,
            RecorderView {
                target,
                options,
                events,
                before,
                after,
            },
        )
    }
}
