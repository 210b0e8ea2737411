//! The watch system's only threads, started here and nowhere else, once per process.
//!
//! - The delivery pool: `COORDKV_DELIVERY_THREADS` threads (default 2) running callbacks.
//!   A watcher with queued events is handed to the pool once (its `scheduled` flag), a
//!   thread runs one callback and puts it back at the end of the queue if more is waiting:
//!   each watcher sees one event at a time, in order, and a busy watcher cannot starve
//!   the others. The thread count never depends on how many watches exist.
//! - The progress ticker: one thread that queues PROGRESS for watchers that asked for it.
//!
//! Neither is a tokio worker, so a callback may make any blocking coordkv call. After
//! `fork()` the child's threads are gone: both are started afresh in the child on first
//! use (keyed by the runtime's fork generation).

use super::hub::Watcher;
use crate::runtime::fork_generation;
use crossbeam_channel::{unbounded, Sender};
use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

thread_local! {
    static IS_DELIVERY_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is one of the pool's (a callback is up the stack).
pub(crate) fn on_delivery_thread() -> bool {
    IS_DELIVERY_THREAD.with(Cell::get)
}

fn delivery_threads() -> usize {
    std::env::var("COORDKV_DELIVERY_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| (1..=64).contains(&n))
        .unwrap_or(2)
}

static POOL: Mutex<Option<(u64, Sender<Arc<Watcher>>)>> = Mutex::new(None);

/// Queues a watcher for delivery (the caller set its `scheduled` flag).
pub(crate) fn schedule(watcher: Arc<Watcher>) {
    let generation = fork_generation();
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let sender = match &*pool {
        Some((built_in, sender)) if *built_in == generation => sender.clone(),
        _ => {
            let (sender, receiver) = unbounded::<Arc<Watcher>>();
            for n in 0..delivery_threads() {
                let receiver = receiver.clone();
                let requeue = sender.clone();
                std::thread::Builder::new()
                    .name(format!("coordkv-deliver-{n}"))
                    .spawn(move || {
                        IS_DELIVERY_THREAD.with(|f| f.set(true));
                        while let Ok(watcher) = receiver.recv() {
                            if watcher.deliver_one() {
                                let _ = requeue.send(watcher);
                            }
                        }
                    })
                    .expect("cannot start a coordkv delivery thread");
            }
            *pool = Some((generation, sender.clone()));
            sender
        }
    };
    drop(pool);
    let _ = sender.send(watcher);
}

struct Ticking {
    watcher: Weak<Watcher>,
    due: Instant,
}

struct Ticker {
    generation: u64,
    list: Mutex<Vec<Ticking>>,
    wake: Condvar,
}

static TICKER: Mutex<Option<Arc<Ticker>>> = Mutex::new(None);

/// Starts sending PROGRESS to `watcher` every `progress_interval`, until it ends.
pub(crate) fn watch_progress(watcher: &Arc<Watcher>) {
    let Some(interval) = watcher.progress_interval() else {
        return;
    };
    let generation = fork_generation();
    let ticker = {
        let mut slot = TICKER.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(ticker) if ticker.generation == generation => ticker.clone(),
            _ => {
                let ticker = Arc::new(Ticker {
                    generation,
                    list: Mutex::new(Vec::new()),
                    wake: Condvar::new(),
                });
                let running = ticker.clone();
                std::thread::Builder::new()
                    .name("coordkv-progress".into())
                    .spawn(move || tick_forever(&running))
                    .expect("cannot start the coordkv progress thread");
                *slot = Some(ticker.clone());
                ticker
            }
        }
    };
    ticker
        .list
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Ticking {
            watcher: Arc::downgrade(watcher),
            due: Instant::now() + interval,
        });
    ticker.wake.notify_one();
}

fn tick_forever(ticker: &Ticker) {
    let mut list = ticker.list.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        list.retain_mut(|t| {
            if t.due > now {
                return true;
            }
            let Some(watcher) = t.watcher.upgrade() else {
                return false;
            };
            let interval = watcher
                .progress_interval()
                .unwrap_or(Duration::from_secs(1));
            t.due = now + interval;
            due.push(watcher);
            true
        });
        if !due.is_empty() {
            // Queue the bookmarks without holding the list: registrations may add to it.
            drop(list);
            let mut ended = Vec::new();
            for watcher in due {
                let alive = watcher.hub().is_some_and(|hub| hub.progress(&watcher));
                if !alive {
                    ended.push(Arc::downgrade(&watcher));
                }
            }
            list = ticker.list.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|t| !ended.iter().any(|e| e.ptr_eq(&t.watcher)));
            continue;
        }
        let next = list.iter().map(|t| t.due).min();
        list = match next {
            None => ticker.wake.wait(list).unwrap_or_else(|p| p.into_inner()),
            Some(next) => {
                ticker
                    .wake
                    .wait_timeout(list, next.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}
