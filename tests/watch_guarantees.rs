//! The watch guarantees under load: many watchers of every kind — exact, prefix (aligned
//! and byte-wise), snapshot, start_revision, ignore_deletes, prev_value, PROGRESS, polled
//! and callback — record 20,000+ concurrent writes, some of them opened while the writers
//! run. Each is then checked against the store's own history (watch_support::check).

mod common;
mod watch_support;

use common::test_stores_with;
use coordkv::{ErrorKind, Store, WatchOptions};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watch_support::{check, eventually, full_log, Recorder};

const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 5_000;
const KEYS: usize = 1_000;

fn opts(f: impl FnOnce(&mut WatchOptions)) -> WatchOptions {
    let mut o = WatchOptions {
        buffer_size: 1 << 20,
        ..WatchOptions::default()
    };
    f(&mut o);
    o
}

fn key_of(n: u64) -> String {
    // Two subtrees so prefixes select a part of the traffic. Writes spread evenly, so no
    // key outgrows the 64 revisions the checker needs retained.
    let k = n % KEYS as u64;
    if k % 3 == 0 {
        format!("/other/{k}")
    } else {
        format!("/k/{k}")
    }
}

/// A write mix of put, create, update and delete from one writer; returns the keys used.
fn write_load(store: &Store, seed: u64, count: usize) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = key_of(x >> 8);
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

fn watcher_specs(start_from: u64) -> Vec<(&'static str, &'static str, WatchOptions, bool)> {
    vec![
        ("exact", "/k/7", opts(|_| {}), false),
        ("exact cold", "/k/100", opts(|_| {}), true),
        ("prefix /k/", "/k/", opts(|o| o.prefix = true), false),
        ("bytewise /k/1", "/k/1", opts(|o| o.prefix = true), true),
        ("prefix /", "/", opts(|o| o.prefix = true), false),
        (
            "snapshot /k/",
            "/k/",
            opts(|o| {
                o.prefix = true;
                o.snapshot = true
            }),
            false,
        ),
        (
            "snapshot bytewise /other/2",
            "/other/2",
            opts(|o| {
                o.prefix = true;
                o.snapshot = true;
                o.progress_interval = Some(Duration::from_millis(3))
            }),
            true,
        ),
        (
            "snapshot empty range",
            "/empty/",
            opts(|o| {
                o.prefix = true;
                o.snapshot = true
            }),
            false,
        ),
        (
            "replay /other/",
            "/other/",
            opts(|o| {
                o.prefix = true;
                o.start_revision = start_from
            }),
            false,
        ),
        (
            "replay from 1, callback",
            "/",
            opts(|o| {
                o.prefix = true;
                o.start_revision = 1
            }),
            true,
        ),
        (
            "ignore deletes + prev",
            "/k/",
            opts(|o| {
                o.prefix = true;
                o.ignore_deletes = true;
                o.prev_value = true
            }),
            false,
        ),
        (
            "progress + prev",
            "/",
            opts(|o| {
                o.prefix = true;
                o.prev_value = true;
                o.progress_interval = Some(Duration::from_millis(2))
            }),
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
        let sentinels: Vec<u64> = recorders
            .iter()
            .map(|r| {
                let key = r.sentinel_key();
                keys.insert(key.clone());
                store.put(&key, b"sentinel").unwrap()
            })
            .collect();
        for (r, &s) in recorders.iter().zip(&sentinels) {
            eventually(&format!("{backend} {}: its sentinel", r.label), || {
                r.has_data_at_or_after(s)
            });
        }
        let log = full_log(&store, &keys);
        for (r, s) in recorders.into_iter().zip(sentinels) {
            let (label, view) = r.finish();
            check(&format!("{backend} {label}"), &view, &log, s);
        }
    }
}
