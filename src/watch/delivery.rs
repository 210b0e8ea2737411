//! The watch system's only threads, started here and nowhere else, and the rules for
//! waiting on callbacks.
//!
//! - The delivery pool: `COORDKV_DELIVERY_THREADS` threads (default 2) running callbacks.
//!   A watcher with queued events is handed to the pool once (its `scheduled` flag), a
//!   thread runs one callback and puts it back at the end of the queue if more is waiting:
//!   each watcher sees one event at a time, in order, and a busy watcher cannot starve
//!   the others. The thread count never depends on how many watches exist.
//! - The progress ticker: one thread that queues PROGRESS for watchers that asked for it.
//!
//! Neither is a tokio worker, so a callback may make any blocking coordkv call. Threads
//! are started when a watch that needs them is opened ([`start_threads`], before the
//! watcher is registered), never while an event is dispatched: a thread that cannot be
//! started fails that open with `UNAVAILABLE` and leaves nothing behind.
//!
//! Fork: the child has the parent's memory but none of its threads, and any lock a
//! parent thread held at the fork stays held for good. So the pool and the ticker live in
//! a `PerProcess` cell (no process-wide lock): a child builds fresh ones on first use,
//! leaving the parent's untouched.
//!
//! Waiting on callbacks: a close never waits on a delivery thread (a callback closing
//! another watch, or a store, while that one's callback closes it back would otherwise
//! wait for each other for good). A close elsewhere waits for a running callback; what
//! must outlive a running callback (a handle's slot) is released by [`when_all_quiet`].

use super::hub::Watcher;
use crate::error::{Error, ErrorKind, Result};
use crate::per_process::PerProcess;
use crate::sync::lock;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The threads of one process. Never freed (a forked child's copy has no threads to
/// join), so a `&'static` to one stays valid.
struct Threads {
    sender: Sender<Arc<Watcher>>,
    receiver: Receiver<Arc<Watcher>>,
    /// Delivery threads started so far (the lock is this generation's own).
    delivering: Mutex<usize>,
    ticking: Mutex<Vec<Ticking>>,
    tick: Condvar,
    ticker_started: Mutex<bool>,
}

static THREADS: PerProcess<Threads> = PerProcess::new();

/// This process's threads (none started yet on first use).
fn threads() -> &'static Threads {
    THREADS.get_or_init(|| {
        let (sender, receiver) = unbounded();
        Threads {
            sender,
            receiver,
            delivering: Mutex::new(0),
            ticking: Mutex::new(Vec::new()),
            tick: Condvar::new(),
            ticker_started: Mutex::new(false),
        }
    })
}

fn cannot_start(what: &str, error: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "cannot start a thread for {what} (the process is out of threads or memory): {error}"
        ),
    )
}

/// Starts what a new watch needs before it is registered: the delivery pool for a
/// callback watch, the ticker for one with a progress interval. `UNAVAILABLE` when the
/// system refuses a thread and none of the kind is running yet.
pub(crate) fn start_threads(callback: bool, progress: bool) -> Result<()> {
    let threads = threads();
    if callback {
        let mut started = lock(&threads.delivering);
        while *started < delivery_threads() {
            let receiver = threads.receiver.clone();
            let requeue = threads.sender.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("coordkv-deliver-{}", *started))
                .spawn(move || {
                    IS_DELIVERY_THREAD.with(|f| f.set(true));
                    while let Ok(watcher) = receiver.recv() {
                        if watcher.deliver_one() {
                            let _ = requeue.send(watcher);
                        }
                    }
                });
            match spawned {
                Ok(_) => *started += 1,
                // Fewer threads than asked still deliver; none cannot.
                Err(_) if *started > 0 => break,
                Err(e) => return Err(cannot_start("watch callbacks", e)),
            }
        }
    }
    if progress {
        let mut started = lock(&threads.ticker_started);
        if !*started {
            std::thread::Builder::new()
                .name("coordkv-progress".into())
                .spawn(move || tick_forever(threads))
                .map_err(|e| cannot_start("watch progress", e))?;
            *started = true;
        }
    }
    Ok(())
}

/// Queues a watcher for delivery (the caller set its `scheduled` flag). The pool was
/// started when the watch was opened, in this fork generation.
pub(crate) fn schedule(watcher: Arc<Watcher>) {
    let _ = threads().sender.send(watcher);
}

/// Runs `action` once none of `watchers` is inside its callback (at once when none is).
/// The action runs on the thread that sees the last one return.
pub(crate) fn when_all_quiet(watchers: &[Arc<Watcher>], action: Box<dyn FnOnce() + Send>) {
    struct Countdown {
        left: AtomicUsize,
        action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }
    impl Countdown {
        fn done(&self) {
            if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                if let Some(action) = lock(&self.action).take() {
                    action();
                }
            }
        }
    }
    let countdown = Arc::new(Countdown {
        left: AtomicUsize::new(watchers.len() + 1),
        action: Mutex::new(Some(action)),
    });
    for watcher in watchers {
        let countdown = countdown.clone();
        watcher.after_quiet(Box::new(move || countdown.done()));
    }
    countdown.done();
}

struct Ticking {
    watcher: Weak<Watcher>,
    due: Instant,
}

/// Starts sending PROGRESS to `watcher` every `progress_interval`, until it ends. The
/// ticker was started when the watch was opened.
pub(crate) fn watch_progress(watcher: &Arc<Watcher>) {
    let Some(interval) = watcher.progress_interval() else {
        return;
    };
    let threads = threads();
    lock(&threads.ticking).push(Ticking {
        watcher: Arc::downgrade(watcher),
        due: Instant::now() + interval,
    });
    threads.tick.notify_one();
}

fn tick_forever(threads: &Threads) {
    let mut list = lock(&threads.ticking);
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
            list = lock(&threads.ticking);
            list.retain(|t| !ended.iter().any(|e| e.ptr_eq(&t.watcher)));
            continue;
        }
        let next = list.iter().map(|t| t.due).min();
        list = match next {
            None => threads.tick.wait(list).unwrap_or_else(|p| p.into_inner()),
            Some(next) => {
                threads
                    .tick
                    .wait_timeout(list, next.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}
