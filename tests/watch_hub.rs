//! Watch behaviour one feature at a time: exact and prefix matching, snapshot and SYNCED,
//! start_revision replay and history lost, prev_value, ignore_deletes, PURGE, the watcher
//! limit, closing, store close, and a slow watcher's overflow beside a fast one.

mod common;
mod watch_support;

use common::test_stores_with;
use coordkv::{CancelReason, ErrorKind, Event, EventKind, WatchOptions};
use std::time::Duration;
use watch_support::{next_event, open_watch, With};

fn prefix() -> WatchOptions {
    WatchOptions::default().with(|o| o.prefix = true)
}

fn no_more(watch: &coordkv::Watch) {
    let e = watch.next(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "expected no pending event");
}

fn data(e: &Event) -> (EventKind, &str, &[u8], u64) {
    let entry = e.entry.as_ref().expect("a data event");
    (e.kind, &entry.key, &entry.value, entry.revision)
}

#[test]
fn exact_watch_sees_only_its_key_and_a_write_made_after_it_returns() {
    for (backend, store) in test_stores_with("exact", "") {
        let watch = open_watch(&store, "/a/b", WatchOptions::default());
        let r1 = store.put("/a/b", b"1").unwrap();
        store.put("/a/bc", b"x").unwrap();
        store.put("/a/b/c", b"x").unwrap();
        let r2 = store.delete("/a/b", 0).unwrap();
        assert_eq!(
            data(&next_event(&watch)),
            (EventKind::Put, "/a/b", &b"1"[..], r1)
        );
        let delete = next_event(&watch);
        assert_eq!(
            (delete.kind, delete.revision),
            (EventKind::Delete, r2),
            "{backend}"
        );
        no_more(&watch);
    }
}

#[test]
fn aligned_and_bytewise_prefixes_match_like_etcd() {
    for (backend, store) in test_stores_with("prefixes", "") {
        let aligned = open_watch(&store, "/nodes/", prefix());
        let bytewise = open_watch(&store, "/nod", prefix());
        store.put("/nodes/n-1", b"1").unwrap();
        store.put("/nodule", b"2").unwrap();
        store.put("/nodes", b"3").unwrap();
        store.put("/other/x", b"4").unwrap();
        let a: Vec<_> = (0..1).map(|_| next_event(&aligned)).collect();
        assert_eq!(
            &*a[0].entry.as_ref().unwrap().key,
            "/nodes/n-1",
            "{backend}"
        );
        no_more(&aligned);
        let keys: Vec<String> = (0..3)
            .map(|_| next_event(&bytewise).entry.unwrap().key.to_string())
            .collect();
        assert_eq!(keys, ["/nodes/n-1", "/nodule", "/nodes"]);
        no_more(&bytewise);
    }
}

#[test]
fn snapshot_sends_live_values_then_synced_also_for_an_empty_range() {
    for (_backend, store) in test_stores_with("snapshot", "") {
        store.put("/s/a", b"1").unwrap();
        store.put("/s/b", b"2").unwrap();
        store.delete("/s/b", 0).unwrap();
        let at = store.put("/s/c", b"3").unwrap();
        let snap = prefix().with(|o| o.snapshot = true);
        let watch = open_watch(&store, "/s/", snap.clone());
        let first = next_event(&watch);
        let second = next_event(&watch);
        assert_eq!(data(&first).1, "/s/a");
        assert_eq!(data(&second).1, "/s/c");
        let synced = next_event(&watch);
        assert_eq!((synced.kind, synced.revision), (EventKind::Synced, at));
        let later = store.put("/s/d", b"4").unwrap();
        assert_eq!(data(&next_event(&watch)).3, later);

        let empty = open_watch(&store, "/nothing/", snap);
        let synced = next_event(&empty);
        assert_eq!((synced.kind, synced.revision), (EventKind::Synced, later));
    }
}

#[test]
fn start_revision_replays_then_continues_live_and_resumes_without_gap() {
    for (_backend, store) in test_stores_with("replay", "") {
        let r1 = store.put("/r/a", b"1").unwrap();
        store.put("/x", b"-").unwrap();
        let r3 = store.put("/r/b", b"2").unwrap();
        let from = prefix().with(|o| o.start_revision = r1 + 1);
        let watch = open_watch(&store, "/r/", from);
        assert_eq!(data(&next_event(&watch)).3, r3);
        no_more(&watch);
        let r4 = store.put("/r/c", b"3").unwrap();
        assert_eq!(data(&next_event(&watch)).3, r4);
        // A start in the future skips everything before it.
        let future = open_watch(&store, "/r/", prefix().with(|o| o.start_revision = r4 + 2));
        store.put("/r/d", b"4").unwrap();
        let r6 = store.put("/r/e", b"5").unwrap();
        assert_eq!(data(&next_event(&future)).3, r6);
    }
}

#[test]
fn replay_older_than_retained_history_is_canceled_history_lost() {
    for (_backend, store) in test_stores_with("lost", "\"history\": 2") {
        let r1 = store.put("/h/a", b"1").unwrap();
        store.put("/h/a", b"2").unwrap();
        store.put("/h/a", b"3").unwrap(); // r1 is no longer retained
        let other = store.put("/i/b", b"x").unwrap();
        let watch = open_watch(&store, "/h/", prefix().with(|o| o.start_revision = r1));
        let c = next_event(&watch);
        assert_eq!(c.kind, EventKind::Canceled);
        assert_eq!(c.cancel_reason, Some(CancelReason::HistoryLost));
        assert_eq!(c.revision, r1 - 1);
        assert_eq!(
            watch.next(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::Closed
        );
        // From r1 + 1 the key's history is complete again; another key is not affected.
        let ok = open_watch(&store, "/h/", prefix().with(|o| o.start_revision = r1 + 1));
        assert_eq!(data(&next_event(&ok)).2, b"2");
        let unrelated = open_watch(&store, "/i/", prefix().with(|o| o.start_revision = r1));
        assert_eq!(data(&next_event(&unrelated)).3, other);
        // A purge drops history too.
        let p = store.purge("/i/b").unwrap();
        let purged = open_watch(
            &store,
            "/i/b",
            WatchOptions::default().with(|o| o.start_revision = other),
        );
        let c = next_event(&purged);
        assert_eq!(c.cancel_reason, Some(CancelReason::HistoryLost));
        assert!(p > other);
    }
}

#[test]
fn prev_value_ignore_deletes_and_purge_events() {
    for (_backend, store) in test_stores_with("prev", "") {
        let with_prev = open_watch(
            &store,
            "/p",
            WatchOptions::default().with(|o| o.prev_value = true),
        );
        let no_deletes = open_watch(
            &store,
            "/p",
            WatchOptions::default().with(|o| o.ignore_deletes = true),
        );
        store.put("/p", b"1").unwrap();
        store.put("/p", b"2").unwrap();
        store.delete("/p", 0).unwrap();
        store.put("/p", b"3").unwrap();
        let purge = store.purge("/p").unwrap();
        let events: Vec<Event> = (0..5).map(|_| next_event(&with_prev)).collect();
        let prevs: Vec<Option<&[u8]>> = events
            .iter()
            .map(|e| e.prev.as_ref().map(|p| &p.value[..]))
            .collect();
        assert_eq!(prevs, [None, Some(&b"1"[..]), Some(b"2"), None, Some(b"3")]);
        assert_eq!(
            (events[4].kind, events[4].revision),
            (EventKind::Purge, purge)
        );
        let kept: Vec<Vec<u8>> = (0..3)
            .map(|_| next_event(&no_deletes).entry.unwrap().value.to_vec())
            .collect();
        assert_eq!(kept, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        no_more(&no_deletes);
    }
}

#[test]
fn watcher_limit_closing_unregisters_and_bad_options_are_refused() {
    for (_backend, store) in test_stores_with("limit", "\"max_watchers\": 2") {
        let a = open_watch(&store, "/l/a", WatchOptions::default());
        let b = open_watch(&store, "/l/", prefix());
        let third = store.watch("/l/c", WatchOptions::default()).err().unwrap();
        assert_eq!(third.kind(), ErrorKind::Limit);
        a.close();
        assert_eq!(store.watcher_count(), 1);
        assert_eq!(
            a.next(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::Closed
        );
        drop(b);
        assert_eq!(store.watcher_count(), 0);
        let c = open_watch(&store, "/l/c", WatchOptions::default());
        let bad_key = store.watch("/l/", WatchOptions::default()).err().unwrap();
        assert_eq!(bad_key.kind(), ErrorKind::InvalidArgument);
        let both = prefix()
            .with(|o| o.snapshot = true)
            .with(|o| o.start_revision = 1);
        assert_eq!(
            store.watch("/l/", both).err().unwrap().kind(),
            ErrorKind::InvalidArgument
        );
        drop(c);
    }
}

#[test]
fn closing_the_store_cancels_every_watch() {
    for (backend, store) in test_stores_with("store_close", "") {
        let watch = open_watch(&store, "/c/", prefix());
        let last = store.put("/c/x", b"1").unwrap();
        store.put("/elsewhere", b"1").unwrap();
        // On NATS the write arrives asynchronously: take it before closing.
        assert_eq!(data(&next_event(&watch)).3, last);
        store.close();
        let c = next_event(&watch);
        assert_eq!(c.cancel_reason, Some(CancelReason::StoreClosed));
        // mem:// dispatches every write; the NATS feed only what its watches follow, so
        // its bookmark is the last watched write.
        let through = if backend == "mem" { last + 1 } else { last };
        assert_eq!(
            c.revision, through,
            "complete through the last dispatched write"
        );
        assert_eq!(watch.next(None).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(
            store.watch("/c/", prefix()).err().unwrap().kind(),
            ErrorKind::Closed
        );
    }
}

#[test]
fn slow_watcher_overflows_with_resumable_revision_while_fast_one_gets_everything() {
    for (_backend, store) in test_stores_with("overflow", "\"history\": 64") {
        let small_buffer = prefix().with(|o| o.buffer_size = 8);
        let slow = open_watch(&store, "/o/", small_buffer.clone());
        let fast = open_watch(&store, "/o/", small_buffer);
        let mut written = Vec::new();
        let mut fast_got = Vec::new();
        for i in 0..40u32 {
            store.put("/unwatched", b"-").unwrap();
            written.push(
                store
                    .put(&format!("/o/{}", i % 5), &i.to_be_bytes())
                    .unwrap(),
            );
            fast_got.push(next_event(&fast).revision);
        }
        assert_eq!(fast_got, written, "the fast watcher gets every write");
        // The slow one holds 8 events, then CANCELED(overflow) instead of the 9th.
        let slow_got: Vec<Event> = (0..9).map(|_| next_event(&slow)).collect();
        let got: Vec<u64> = slow_got[..8].iter().map(|e| e.revision).collect();
        assert_eq!(got, written[..8]);
        let c = &slow_got[8];
        assert_eq!(c.cancel_reason, Some(CancelReason::Overflow));
        assert_eq!(
            c.revision,
            written[8] - 1,
            "complete through just before the 9th"
        );
        assert_eq!(slow.next(None).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(
            store.watcher_count(),
            1,
            "the overflowed watcher left the registry"
        );
        // Resuming from last_revision + 1 continues exactly where it stopped.
        let resumed = open_watch(
            &store,
            "/o/",
            prefix().with(|o| o.start_revision = c.revision + 1),
        );
        let rest: Vec<u64> = (0..32).map(|_| next_event(&resumed).revision).collect();
        assert_eq!(rest, written[8..]);
    }
}

#[test]
fn progress_bookmarks_follow_delivered_events() {
    for (backend, store) in test_stores_with("progress", "") {
        let every_ms = prefix().with(|o| o.progress_interval = Some(Duration::from_millis(1)));
        let watch = open_watch(&store, "/g/", every_ms);
        let r = store.put("/g/a", b"1").unwrap();
        let last = store.put("/unrelated", b"1").unwrap();
        // Bookmarks before the write arrives (NATS delivers it asynchronously) are older.
        let mut first = next_event(&watch);
        while first.kind == EventKind::Progress {
            assert!(first.revision < r);
            first = next_event(&watch);
        }
        assert_eq!((first.kind, first.revision), (EventKind::Put, r));
        loop {
            let e = next_event(&watch);
            assert_eq!(e.kind, EventKind::Progress);
            assert!(e.revision >= r);
            // On NATS a bookmark moves with the writes the feed follows: /unrelated is
            // not one of them.
            let through = if backend == "mem" { last } else { r };
            if e.revision == through {
                break;
            }
        }
    }
}

#[test]
fn replay_with_prev_value_gives_the_value_before_the_start() {
    for (backend, store) in test_stores_with("replay_prev", "") {
        store.put("/p/a", b"v1").unwrap();
        let r2 = store.put("/p/a", b"v2").unwrap();
        store.put("/p/b", b"only").unwrap();
        let options = prefix()
            .with(|o| o.start_revision = r2)
            .with(|o| o.prev_value = true);
        let watch = open_watch(&store, "/p/", options);
        let first = next_event(&watch);
        assert_eq!(data(&first).3, r2, "{backend}");
        let prev = first.prev.expect("the value before the start");
        assert_eq!(&prev.value[..], b"v1", "{backend}");
        let second = next_event(&watch);
        assert_eq!(data(&second).1, "/p/b", "{backend}");
        assert!(second.prev.is_none(), "{backend}");
    }
}

#[test]
fn a_resync_watch_gets_a_marked_snapshot_where_history_is_lost_then_goes_on_live() {
    for (backend, store) in test_stores_with("resync", "\"history\": 2") {
        let r1 = store.put("/h/a", b"1").unwrap();
        store.put("/h/a", b"2").unwrap();
        let r3 = store.put("/h/a", b"3").unwrap(); // r1 is no longer retained
        let rb = store.put("/h/b", b"b").unwrap();
        let options = prefix()
            .with(|o| o.start_revision = r1)
            .with(|o| o.resync = true);
        let watch = open_watch(&store, "/h/", options);
        // The scope's current values, marked as a resync, then SYNCED marked too.
        let a = next_event(&watch);
        assert!(a.resync, "{backend}");
        assert_eq!(
            data(&a),
            (EventKind::Put, "/h/a", &b"3"[..], r3),
            "{backend}"
        );
        let b = next_event(&watch);
        assert!(b.resync, "{backend}");
        assert_eq!(data(&b).3, rb, "{backend}");
        let synced = next_event(&watch);
        assert_eq!(synced.kind, EventKind::Synced, "{backend}");
        assert!(synced.resync, "{backend}");
        assert!(synced.revision >= rb, "{backend}");
        // Live events after it are ordinary ones.
        let r5 = store.put("/h/a", b"4").unwrap();
        let live = next_event(&watch);
        assert!(!live.resync, "{backend}");
        assert_eq!(data(&live).3, r5, "{backend}");
        no_more(&watch);
    }
}
