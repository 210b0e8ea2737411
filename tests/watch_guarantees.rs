//! The watch guarantees under load: many watchers of every kind — exact, prefix (aligned
//! and byte-wise), snapshot, start_revision, ignore_deletes, prev_value, PROGRESS, polled
//! and callback — record 20,000+ concurrent writes, some of them opened while the writers
//! run. Each is then checked against the store's own history (watch_support::check).

mod common;
mod watch_support;

use common::test_stores_with;
use coordkv::{Entry, ErrorKind, Operation, Store, WriteOptions};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watch_support::{
    check_through_sentinels, check_through_sentinels_with, load_key, options, random_stream,
    Recorder, Spec,
};

const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 5_000;
const KEYS: usize = 1_000;

/// A write mix of put, create, update and delete from one writer; returns the keys used.
fn write_load(store: &Store, seed: u64, count: usize) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (i, x) in random_stream(seed).take(count).enumerate() {
        // Writes spread evenly, so no key outgrows the 64 revisions the checker needs.
        let key = load_key(x >> 8, KEYS as u64);
        let value = format!("w{seed}-{i}");
        let result = match x % 20 {
            0..=13 => store.put(&key, value.as_bytes()),
            14..=16 => store.delete(&key, 0),
            17 => store.create(&key, value.as_bytes()),
            _ => match store.history(&key) {
                Ok(h) => store.update(&key, value.as_bytes(), h.last().unwrap().revision),
                Err(_) => store.create(&key, value.as_bytes()),
            },
        };
        match result {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(e) => panic!("write to {key} failed: {e}"),
        }
        keys.insert(key);
    }
    keys
}

fn watcher_specs(start_from: u64) -> Vec<Spec> {
    let replay = format!("prefix from={start_from}");
    vec![
        ("exact", "/k/7", options(""), false),
        ("exact cold", "/k/100", options(""), true),
        ("prefix /k/", "/k/", options("prefix"), false),
        ("bytewise /k/1", "/k/1", options("prefix"), true),
        ("prefix /", "/", options("prefix"), false),
        ("snapshot /k/", "/k/", options("prefix snapshot"), false),
        (
            "snapshot bytewise /other/2",
            "/other/2",
            options("prefix snapshot progress=3"),
            true,
        ),
        (
            "snapshot empty range",
            "/empty/",
            options("prefix snapshot"),
            false,
        ),
        ("replay /other/", "/other/", options(&replay), false),
        (
            "replay from 1, callback",
            "/",
            options("prefix from=1"),
            true,
        ),
        (
            "ignore deletes + prev",
            "/k/",
            options("prefix ignore_deletes prev"),
            false,
        ),
        (
            "progress + prev",
            "/",
            options("prefix prev progress=2"),
            false,
        ),
    ]
}

#[test]
fn every_watcher_gets_exactly_the_history_under_concurrent_writers() {
    for (backend, store) in test_stores_with("guarantees", "\"history\": 64") {
        let store = Arc::new(store);
        let mut keys = write_load(&store, 99, 2_000);
        let start_from = store.last_revision().unwrap() / 2;

        let mut recorders: Vec<Recorder> = watcher_specs(start_from)
            .into_iter()
            .map(|(label, target, o, cb)| Recorder::start(&store, label, target, o, cb))
            .collect();

        // Writers, and the same watchers opened again while the writers run.
        let late = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || write_load(&store, w as u64 + 1, WRITES_PER_WRITER))
            })
            .collect();
        let opener = {
            let (store, late) = (store.clone(), late.clone());
            std::thread::spawn(move || {
                for (label, target, o, cb) in watcher_specs(start_from) {
                    std::thread::sleep(Duration::from_millis(3));
                    let label = format!("late {label}");
                    late.lock()
                        .unwrap()
                        .push(Recorder::start(&store, &label, target, o, cb));
                }
            })
        };
        for writer in writers {
            keys.extend(writer.join().unwrap());
        }
        opener.join().unwrap();
        recorders.append(&mut late.lock().unwrap());
        assert!(store.last_revision().unwrap() >= (WRITERS * WRITES_PER_WRITER) as u64);

        // One sentinel per watcher; each is checked through its own sentinel.
        check_through_sentinels(&store, recorders, keys, &backend);
    }
}

/// Keys that expire, among concurrent ordinary writes: every watcher receives each key's
/// EXPIRED in order, once, without a gap, and the checker accepts it like any other event.
/// On `mem://`, where deadlines are exact; the NATS expiry paths are in `leases.rs` and
/// `nats_leases.rs` (a marker lives a second there, too short to read the log after).
#[test]
fn expiries_reach_every_watcher_ordered_unique_and_gap_free() {
    let store = Arc::new(Store::open_json(r#"{"url": "mem://", "history": 64}"#).unwrap());
    let mut keys = write_load(&store, 7, 500);
    let start_from = store.last_revision().unwrap();
    let recorders: Vec<Recorder> = watcher_specs(start_from)
        .into_iter()
        .map(|(label, target, o, cb)| Recorder::start(&store, label, target, o, cb))
        .collect();
    let ttl = WriteOptions {
        ttl: Some(Duration::from_millis(50)),
        ..WriteOptions::default()
    };
    let expiring = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut written = Vec::new();
            for i in 0..300 {
                let key = format!("/k/t{i}");
                let value = format!("ttl-{i}");
                let revision = store.put_with(&key, value.as_bytes(), &ttl).unwrap();
                written.push((key, value, revision));
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            written
        })
    };
    keys.extend(write_load(&store, 8, 3_000));
    let written = expiring.join().unwrap();
    for (key, ..) in &written {
        watch_support::eventually(&format!("{key} expires"), || {
            store
                .get(key)
                .is_err_and(|e| e.kind() == ErrorKind::NotFound)
        });
    }
    // An expiry rolls its key up to the EXPIRED tombstone: the PUT it ended is known from
    // the write, the tombstone from the key's history.
    let log_of = move |store: &Store, keys: &BTreeSet<String>| {
        let mut log = watch_support::full_log_without_count(store, keys);
        for (key, value, revision) in &written {
            let history = store.history(key).unwrap();
            assert_eq!(history.len(), 1, "{key}: {history:?}");
            assert_eq!(history[0].operation, Operation::Expired, "{key}");
            let put = Entry {
                value: value.clone().into_bytes().into(),
                revision: *revision,
                operation: Operation::Put,
                ..history[0].clone()
            };
            log.push(put);
            log.push(history[0].clone());
        }
        log.sort_by_key(|e| e.revision);
        assert_eq!(
            log.len() as u64,
            store.last_revision().unwrap(),
            "every revision"
        );
        log
    };
    check_through_sentinels_with(&store, recorders, keys, "mem expiry", log_of);
}
