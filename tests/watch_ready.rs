//! Ready watches: the owner takes events with `next` without waiting, and a delivery
//! thread runs the ready hook once events wait after the owner last found the queue empty.
//! What an event loop needs (Go's binding drains its watches this way): no lost wake-up,
//! the core's own overflow, close waiting for a running hook, catch-up announced too.

mod common;

use common::test_stores_with;
use coordkv::{CancelReason, ErrorKind, EventKind, WatchOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn every_event_arrives_through_wake_ups_without_a_lost_one() {
    for (backend, store) in test_stores_with("ready_burst", "") {
        let store = Arc::new(store);
        let (signal, woken) = mpsc::channel::<()>();
        let hooks = Arc::new(AtomicUsize::new(0));
        let counted = hooks.clone();
        // Room for the whole burst: this test is about wake-ups, not about keeping up. One
        // key per write, so a consumer slowed down by a loaded machine never finds a
        // revision already trimmed by the bucket's per-key history (that would end the
        // watch with HISTORY_LOST, which is right, but not what this test is about).
        let options = WatchOptions {
            prefix: true,
            buffer_size: 4_096,
            ..WatchOptions::default()
        };
        let watch = store
            .watch_ready("/r/", options, move || {
                counted.fetch_add(1, Ordering::Relaxed);
                let _ = signal.send(());
            })
            .unwrap();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..2_000)
                    .map(|i| store.put(&format!("/r/k{i}"), b"v").unwrap())
                    .collect::<Vec<u64>>()
            })
        };
        let mut received = Vec::new();
        while received.len() < 2_000 {
            woken
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("{backend}: no wake-up after {}", received.len()));
            loop {
                match watch.next(Some(Duration::ZERO)) {
                    Ok(event) => received.push(event.revision),
                    Err(e) if e.kind() == ErrorKind::Timeout => break,
                    Err(e) => panic!("{backend}: {e}"),
                }
            }
        }
        let written = writer.join().unwrap();
        assert_eq!(received, written, "{backend}");
        let hooks = hooks.load(Ordering::Relaxed);
        assert!((1..=2_000).contains(&hooks), "{backend}: {hooks} wake-ups");
        println!("{backend}: 2,000 events through {hooks} wake-ups");
    }
}

#[test]
fn a_snapshot_wakes_the_owner_and_an_unread_watch_overflows_in_the_core() {
    for (backend, store) in test_stores_with("ready_overflow", "") {
        store.put("/o/a", b"1").unwrap();
        let (signal, woken) = mpsc::channel::<()>();
        let options = WatchOptions {
            prefix: true,
            snapshot: true,
            buffer_size: 4,
            ..WatchOptions::default()
        };
        let watch = store
            .watch_ready("/o/", options, move || {
                let _ = signal.send(());
            })
            .unwrap();
        woken
            .recv_timeout(WAIT)
            .expect("the snapshot wakes the owner");
        // Not drained: five live writes overflow a buffer of four. On NATS events are
        // dispatched after the acks: a write outside the watch's scope, seen by a second
        // watch, says the hub has finished dispatching every write before it.
        let fence = store.watch("/p/fence", WatchOptions::default()).unwrap();
        let mut last = 0;
        for i in 0..5 {
            last = store.put("/o/a", format!("{i}").as_bytes()).unwrap();
        }
        let fenced_at = store.put("/p/fence", b"f").unwrap();
        while fence.next(Some(WAIT)).unwrap().revision < fenced_at {}
        let mut kinds = Vec::new();
        let ended = loop {
            let event = watch
                .next(Some(WAIT))
                .unwrap_or_else(|e| panic!("{backend}: after {kinds:?}: {e}"));
            kinds.push(event.kind);
            if event.kind == EventKind::Canceled {
                break event;
            }
        };
        assert_eq!(
            ended.cancel_reason,
            Some(CancelReason::Overflow),
            "{backend}"
        );
        assert!(ended.revision < last, "{backend}");
        assert_eq!(kinds[..2], [EventKind::Put, EventKind::Synced], "{backend}");
        assert_eq!(
            watch.next(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::Closed
        );
    }
}

#[test]
fn close_waits_for_a_running_hook_and_no_hook_runs_after_it() {
    for (backend, store) in test_stores_with("ready_close", "") {
        let calls = Arc::new(AtomicUsize::new(0));
        let (entered, hook_running) = mpsc::channel::<()>();
        let counted = calls.clone();
        let watch = store
            .watch_ready("/c/k", WatchOptions::default(), move || {
                let _ = entered.send(());
                std::thread::sleep(Duration::from_millis(200));
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        store.put("/c/k", b"1").unwrap();
        hook_running.recv_timeout(WAIT).expect("the hook runs");
        watch.close();
        // The hook had started: close returned only after it did.
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{backend}");
        store.put("/c/k", b"2").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{backend}");
    }
}
