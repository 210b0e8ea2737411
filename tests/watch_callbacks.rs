//! Callback delivery: a callback may close its own watch, after `close` returns a
//! callback is never called again, and closing the store quiesces callbacks.
//! (The 1,000-watch thread bound is in watch_threads.rs, alone in its process.)

mod common;
mod watch_support;

use common::test_stores_with;
use coordkv::{Event, EventKind, WatchOptions};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watch_support::eventually;

#[test]
fn a_callback_can_close_its_own_watch_and_close_quiesces() {
    for (_backend, store) in test_stores_with("cb_close", "") {
        // Closing from inside: the current call is the last one.
        let calls = Arc::new(AtomicUsize::new(0));
        let slot: Arc<Mutex<Option<coordkv::Watch>>> = Arc::new(Mutex::new(None));
        let (c, s) = (calls.clone(), slot.clone());
        let watch = store
            .watch_callback("/self", WatchOptions::default(), move |_e: &Event| {
                if c.fetch_add(1, Ordering::SeqCst) == 1 {
                    if let Some(w) = s.lock().unwrap().as_ref() {
                        w.close();
                    }
                }
            })
            .unwrap();
        *slot.lock().unwrap() = Some(watch);
        for i in 0..5u8 {
            store.put("/self", &[i]).unwrap();
        }
        eventually("the self-closing callback's second call", || {
            calls.load(Ordering::SeqCst) >= 2
        });
        eventually("the watch to leave the registry", || {
            store.watcher_count() == 0
        });
        store.put("/self", b"after").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Closing from another thread while the callback runs: once close returns, the
        // callback has finished and is never entered again.
        let inside = Arc::new(AtomicBool::new(false));
        let after_close = Arc::new(AtomicBool::new(false));
        let entered = Arc::new(AtomicUsize::new(0));
        let (i2, a2, e2) = (inside.clone(), after_close.clone(), entered.clone());
        let watch = store
            .watch_callback("/busy", WatchOptions::default(), move |_e: &Event| {
                assert!(
                    !a2.load(Ordering::SeqCst),
                    "callback entered after close returned"
                );
                e2.fetch_add(1, Ordering::SeqCst);
                i2.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                i2.store(false, Ordering::SeqCst);
            })
            .unwrap();
        for i in 0..20u8 {
            store.put("/busy", &[i]).unwrap();
        }
        eventually("the callback to start", || {
            entered.load(Ordering::SeqCst) > 0
        });
        watch.close();
        assert!(
            !inside.load(Ordering::SeqCst),
            "close returned while the callback ran"
        );
        after_close.store(true, Ordering::SeqCst);
        store.put("/busy", b"late").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(entered.load(Ordering::SeqCst) < 21);
    }
}

#[test]
fn store_close_delivers_canceled_to_callbacks_before_returning() {
    for (_backend, store) in test_stores_with("cb_store_close", "") {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let _watch = store
            .watch_callback(
                "/z/",
                WatchOptions {
                    prefix: true,
                    ..WatchOptions::default()
                },
                move |e: &Event| sink.lock().unwrap().push(e.kind),
            )
            .unwrap();
        store.put("/z/a", b"1").unwrap();
        // On NATS the write reaches the watcher asynchronously: let it arrive first.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while events.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        store.close();
        let kinds = events.lock().unwrap().clone();
        assert_eq!(kinds, [EventKind::Put, EventKind::Canceled]);
    }
}

/// Issue 9: two callbacks that close each other's watch. A close on a delivery thread
/// never waits, so neither waits for the other; the owner's closes afterwards wait for
/// whatever still runs, and the delivery threads are free again.
#[test]
fn two_callbacks_closing_each_others_watch_do_not_deadlock() {
    for (_backend, store) in test_stores_with("cb_mutual", "") {
        let store = Arc::new(store);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::spawn(move || {
            type Slot = Arc<Mutex<Option<coordkv::Watch>>>;
            let slots: [Slot; 2] = [Arc::default(), Arc::default()];
            let running = Arc::new(AtomicUsize::new(0));
            let returned = Arc::new(AtomicUsize::new(0));
            for me in 0..2 {
                let other = slots[1 - me].clone();
                let (running, returned) = (running.clone(), returned.clone());
                let watch = s
                    .watch_callback("/k", WatchOptions::default(), move |e: &Event| {
                        if e.kind != EventKind::Put {
                            return;
                        }
                        running.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        if let Some(w) = other.lock().unwrap().as_ref() {
                            w.close();
                        }
                        returned.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                *slots[me].lock().unwrap() = Some(watch);
            }
            s.put("/k", b"v").unwrap();
            eventually("a callback to return", || {
                returned.load(Ordering::SeqCst) >= 1
            });
            for slot in &slots {
                slot.lock().unwrap().take().unwrap().close();
            }
            // Both closes returned on this (non-delivery) thread: nothing runs any more.
            assert_eq!(
                running.load(Ordering::SeqCst),
                returned.load(Ordering::SeqCst)
            );
            // The pool still delivers.
            let seen = Arc::new(AtomicBool::new(false));
            let flag = seen.clone();
            let w = s
                .watch_callback("/k2", WatchOptions::default(), move |_e: &Event| {
                    flag.store(true, Ordering::SeqCst)
                })
                .unwrap();
            s.put("/k2", b"v").unwrap();
            eventually("a later callback", || seen.load(Ordering::SeqCst));
            w.close();
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("deadlock: the closes never returned");
        store.close();
    }
}
