//! The keepalive thread of one store's lessor, and one renewal of one lease.
//!
//! The thread sleeps until the earliest lease is due (or a grant wakes it), renews what
//! is due, and goes back to sleep. It is a plain thread, not a runtime task, because a
//! renewal makes blocking backend calls like any caller. It is started by the first
//! grant or leased write (a refused thread fails that call), holds the lessor weakly, and
//! ends when the store closes.
//!
//! A renewal that fails is retried soon; one that has failed for a whole TTL loses the
//! lease, since the backend may have expired it by then. A renewal that finds the record
//! gone loses it at once.

use super::{ended, next_renewal, Attached, Held, Lessor};
use crate::entry::WriteOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::lock;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long the thread sleeps when no lease is held.
const IDLE: Duration = Duration::from_secs(3600);
/// The longest wait before a failed renewal is tried again.
const RETRY_MAX: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    started: bool,
    stopped: bool,
    woken: bool,
}

#[derive(Default)]
pub(super) struct Thread {
    state: Mutex<State>,
    changed: Condvar,
    running: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Thread {
    pub(super) fn ensure_running(&self, lessor: &Arc<Lessor>) -> Result<()> {
        let mut state = lock(&self.state);
        if state.started || state.stopped {
            return Ok(());
        }
        let lessor = Arc::downgrade(lessor);
        let running = std::thread::Builder::new()
            .name("coordkv-keepalive".into())
            .spawn(move || run(&lessor))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the keepalive thread (out of threads or memory): {e}"),
                )
            })?;
        *lock(&self.running) = Some(running);
        state.started = true;
        Ok(())
    }

    pub(super) fn wake(&self) {
        lock(&self.state).woken = true;
        self.changed.notify_one();
    }

    /// Stops the thread and waits for the renewal it may be in, so that no lost callback
    /// runs after the store's close returns (unless the close comes from that thread, from
    /// inside a lost callback, which cannot wait for itself).
    pub(super) fn stop(&self) {
        lock(&self.state).stopped = true;
        self.changed.notify_one();
        let running = lock(&self.running).take();
        if let Some(running) = running {
            if running.thread().id() == std::thread::current().id() {
                return;
            }
            let _ = running.join();
        }
    }
}

fn run(lessor: &Weak<Lessor>) {
    loop {
        let Some(strong) = lessor.upgrade() else {
            return;
        };
        let next = renew_due(&strong);
        let thread = &strong.thread;
        let mut state = lock(&thread.state);
        if !state.woken && !state.stopped {
            let sleep = next.map_or(IDLE, |at| at.saturating_duration_since(Instant::now()));
            state = (thread.changed.wait_timeout(state, sleep))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if state.stopped {
            return;
        }
        state.woken = false;
    }
}

/// Renews every lease that is due; returns when the next one is.
fn renew_due(lessor: &Lessor) -> Option<Instant> {
    let now = Instant::now();
    let held: Vec<Arc<Held>> = lock(&lessor.held).values().cloned().collect();
    for lease in held.iter().filter(|h| *lock(&h.due) <= now) {
        let _ = renew(lessor, lease);
    }
    let held = lock(&lessor.held);
    held.values().map(|h| *lock(&h.due)).min()
}

/// Renews `held` now: its record (when this store granted it), then its keys. Loses the
/// lease when it ended or could not be renewed for a whole TTL.
pub(super) fn renew(lessor: &Lessor, held: &Held) -> Result<()> {
    let started = Instant::now();
    let outcome = renew_record_and_keys(lessor, held);
    // A renewal that lands more than a TTL after the last one came too late: the backend
    // may have expired the keys meanwhile (a call held up until a server came back).
    let late = Instant::now().saturating_duration_since(*lock(&held.renewed));
    match outcome {
        Ok(true) if late >= held.ttl => {
            let why = format!(
                "lease {} was renewed only {} ms after its previous renewal (its TTL is {} ms)",
                held.id,
                late.as_millis(),
                held.ttl.as_millis()
            );
            lose(lessor, held, why);
            Err(ended(held.id))
        }
        Ok(true) => {
            *lock(&held.renewed) = started;
            *lock(&held.due) = started + next_renewal(held.ttl);
            Ok(())
        }
        Ok(false) => {
            lose(
                lessor,
                held,
                format!("lease {} ended (expired or revoked)", held.id),
            );
            Err(ended(held.id))
        }
        Err(e) => {
            let unrenewed = started.saturating_duration_since(*lock(&held.renewed));
            if unrenewed >= held.ttl {
                let why = format!(
                    "lease {} could not be renewed for {} ms (its TTL): {e}",
                    held.id,
                    unrenewed.as_millis()
                );
                lose(lessor, held, why);
            } else {
                *lock(&held.due) = Instant::now() + (held.ttl / 10).min(RETRY_MAX);
            }
            Err(e)
        }
    }
}

fn lose(lessor: &Lessor, held: &Held, why: String) {
    lock(&lessor.held).remove(&held.id);
    held.lost.set(why);
}

/// `Ok(false)` when the lease record is gone.
fn renew_record_and_keys(lessor: &Lessor, held: &Held) -> Result<bool> {
    let backend = &lessor.backend;
    let alive = if held.owned {
        backend.lease_renew(held.id, held.ttl, true)?
    } else {
        backend.lease_record(held.id)?.is_some()
    };
    if !alive {
        return Ok(false);
    }
    let keys: Vec<(Arc<str>, u64, bytes::Bytes)> = (lock(&held.keys).iter())
        .map(|(key, a)| (key.clone(), a.revision, a.value.clone()))
        .collect();
    let options = WriteOptions {
        lease: held.id,
        ttl: Some(held.ttl),
        quiet: true,
    };
    for (key, revision, value) in keys {
        let now_at = match backend.update(&key, value.clone(), revision, &options) {
            Ok(written) => Some(Attached {
                revision: written,
                value,
            }),
            // Written by someone since: still ours if it is live and on this lease (that
            // write renewed it too), otherwise no longer this lease's to keep.
            Err(e) if e.kind() == ErrorKind::Conflict => backend
                .latest(&key)?
                .filter(|entry| entry.is_live() && entry.lease == held.id)
                .map(|entry| Attached {
                    revision: entry.revision,
                    value: entry.value,
                }),
            Err(e) => return Err(e),
        };
        let mut keys = lock(&held.keys);
        match now_at {
            Some(attached) => keys.insert(key, attached),
            None => keys.remove(&key),
        };
    }
    Ok(true)
}
