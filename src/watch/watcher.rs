//! One watcher: what it watches, where its events go (polled, a callback, a ready hook),
//! and the ways events leave its queue (`Watch::next`, the delivery pool's `deliver_one`,
//! close). Its state under the lock (`inner`: the queue and its life) is in `state`.
//!
//! The hub fills the queue under its own lock and then this watcher's (`inner`); a
//! watcher never calls back into the hub while holding `inner`. The buffer bound counts
//! live events only: catch-up and backlog are marked exempt when queued.

use super::delivery;
use super::feed::{CatchUp, CatchUpMode};
use super::hub::{Callback, Delivery, Hub, ReadyHook};
use super::state::Inner;
use super::{CancelReason, Event, EventKind, WatchOptions};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Scope;
use crate::sync::lock;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// What a possible loss of events did to one watcher.
pub(super) enum Loss {
    None,
    Ended,
    Resync,
}

/// Where a watcher's events go (see `hub::Delivery`).
pub(super) enum Sink {
    Poll,
    Callback(Mutex<Callback>),
    Ready(ReadyHook),
}

impl From<Delivery> for Sink {
    fn from(delivery: Delivery) -> Sink {
        match delivery {
            Delivery::Poll => Sink::Poll,
            Delivery::Callback(callback) => Sink::Callback(Mutex::new(callback)),
            Delivery::Ready(hook) => Sink::Ready(hook),
        }
    }
}

pub(crate) struct Watcher {
    pub(super) id: u64,
    pub(super) target: Box<str>,
    pub(super) options: WatchOptions,
    pub(super) hub: Weak<Hub>,
    pub(super) inner: Mutex<Inner>,
    pub(super) changed: Condvar,
    pub(super) sink: Sink,
    /// Itself, so a notification can hand an `Arc` to the delivery pool.
    pub(super) me: Weak<Watcher>,
}

impl Watcher {
    /// Whether the watcher's options take `entry` (its scope aside).
    fn wants(&self, entry: &Entry) -> bool {
        (entry.is_live() || !self.options.ignore_deletes)
            && (!entry.quiet || self.options.quiet_writes)
    }

    pub(super) fn matches(&self, key: &str) -> bool {
        self.scope().contains(key)
    }

    /// The watched key or prefix, and whether it is a prefix.
    pub(crate) fn scope(&self) -> Scope<'_> {
        Scope {
            target: &self.target,
            prefix: self.options.prefix,
        }
    }

    pub(crate) fn progress_interval(&self) -> Option<Duration> {
        self.options.progress_interval.filter(|i| !i.is_zero())
    }

    pub(crate) fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.upgrade()
    }

    /// Queues a catch-up (registration or resync) in `inner`, ahead of live events.
    pub(super) fn queue_catch_up(
        &self,
        inner: &mut Inner,
        mode: CatchUpMode,
        catch_up: CatchUp,
        resync: bool,
    ) {
        let options = &self.options;
        for (entry, prev) in catch_up.entries {
            // A snapshot holds current values, however quietly they were last written.
            let wanted = (mode == CatchUpMode::Snapshot && entry.is_live()) || self.wants(&entry);
            if wanted && self.matches(&entry.key) {
                let prev = if options.prev_value { prev } else { None };
                let mut event = Event::data(entry, prev);
                event.catch_up = true;
                event.resync = resync;
                inner.push(event, true);
            }
        }
        if mode == CatchUpMode::Snapshot {
            let mut synced = Event::marker(EventKind::Synced, catch_up.through);
            synced.catch_up = true;
            synced.resync = resync;
            inner.push(synced, true);
        }
        inner.last_revision = match mode {
            CatchUpMode::Replay { start, .. } => catch_up.through.max(start - 1),
            _ => catch_up.through.max(inner.last_revision),
        };
    }

    /// Applies a possible loss (see [`Hub::lose`]) to this watcher.
    pub(super) fn lose(&self, candidates: &[(u64, u64)], why: &str) -> Loss {
        let mut inner = lock(&self.inner);
        if inner.ended || inner.closed || inner.resyncing {
            return Loss::None;
        }
        let last = inner.last_revision;
        let Some(first_missed) = candidates
            .iter()
            .find(|(_, hi)| *hi > last)
            .map(|(lo, _)| (*lo).max(last + 1))
        else {
            return Loss::None;
        };
        if self.options.resync {
            inner.resyncing = true;
            return Loss::Resync;
        }
        let message = format!(
            "events after revision {} may be gone before they were read: {why}",
            first_missed - 1
        );
        inner.end(CancelReason::HistoryLost, first_missed - 1, message);
        self.notify(inner);
        Loss::Ended
    }

    /// Queues a dispatched write; false when the watcher has ended and must be unfiled.
    pub(super) fn offer(&self, entry: &Entry, prev: Option<&Entry>, backlog: bool) -> bool {
        let mut inner = lock(&self.inner);
        if inner.ended || inner.closed {
            return false;
        }
        if entry.revision <= inner.last_revision || inner.resyncing {
            return true;
        }
        if !self.wants(entry) {
            // Skipped, but delivered through: PROGRESS bookmarks pass it.
            inner.last_revision = entry.revision;
            return true;
        }
        if !backlog && inner.live_len() >= self.options.buffer_size {
            let message = format!(
                "the watcher did not keep up: {} events were waiting when revision {} arrived",
                inner.live_len(),
                entry.revision
            );
            inner.end(CancelReason::Overflow, entry.revision - 1, message);
            self.notify(inner);
            return false;
        }
        let prev = prev.filter(|_| self.options.prev_value).cloned();
        inner.push(Event::data(entry.clone(), prev), backlog);
        inner.last_revision = entry.revision;
        self.notify(inner);
        true
    }

    /// Tells whoever waits that `inner` changed (the guard it was changed under): the
    /// delivery pool for a callback watch, a thread in `next` for a polled one.
    pub(super) fn notify(&self, inner: MutexGuard<'_, Inner>) {
        match self.sink {
            Sink::Poll => self.wake(inner),
            Sink::Callback(_) => {
                drop(inner);
                self.schedule_if_pending();
            }
            Sink::Ready(_) => {
                self.wake(inner);
                self.schedule_if_pending();
            }
        }
    }

    /// Wakes the threads blocked on `changed`, if any, once `inner` is released.
    pub(super) fn wake(&self, inner: MutexGuard<'_, Inner>) {
        let waiting = inner.waiters > 0;
        drop(inner);
        if waiting {
            self.changed.notify_all();
        }
    }

    /// Blocks on `changed` (at most `timeout`), counted in `waiters` meanwhile.
    pub(super) fn wait<'a>(
        &self,
        mut inner: MutexGuard<'a, Inner>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Inner> {
        inner.waiters += 1;
        let mut inner = match timeout {
            None => self.changed.wait(inner).unwrap_or_else(|p| p.into_inner()),
            Some(timeout) => {
                self.changed
                    .wait_timeout(inner, timeout)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        inner.waiters -= 1;
        inner
    }

    /// Hands a callback watcher with queued events to the delivery pool, once.
    pub(super) fn schedule_if_pending(&self) {
        let mut inner = lock(&self.inner);
        if inner.scheduled || inner.closed || inner.queue.is_empty() {
            return;
        }
        if matches!(self.sink, Sink::Ready(_)) {
            if !inner.armed {
                return;
            }
            inner.armed = false;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        inner.scheduled = true;
        drop(inner);
        delivery::schedule(me);
    }

    /// One delivery step on a pool thread: run the callback for the next event. Returns
    /// whether the watcher still has events and goes back in the pool's queue.
    pub(crate) fn deliver_one(&self) -> bool {
        let callback = match &self.sink {
            Sink::Poll => return false,
            Sink::Ready(hook) => return self.run_ready(hook),
            Sink::Callback(callback) => callback,
        };
        let event = {
            let mut inner = lock(&self.inner);
            let next = if inner.closed { None } else { inner.take() };
            match next {
                Some(event) => {
                    inner.running_on = Some(std::thread::current().id());
                    event
                }
                None => {
                    inner.scheduled = false;
                    self.wake(inner);
                    return false;
                }
            }
        };
        {
            let mut callback = lock(callback);
            // A panicking Rust callback must not take the delivery thread down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (*callback)(&event)));
        }
        let mut inner = lock(&self.inner);
        inner.running_on = None;
        let more = !inner.closed && !inner.queue.is_empty();
        if !more {
            inner.scheduled = false;
        }
        let quiet = std::mem::take(&mut inner.after_quiet);
        self.wake(inner);
        quiet.into_iter().for_each(|action| action());
        more
    }

    /// A ready watch's step on a pool thread: run the hook; run it again (`true`) when the
    /// owner emptied the queue meanwhile and more events came.
    fn run_ready(&self, hook: &ReadyHook) -> bool {
        {
            let mut inner = lock(&self.inner);
            if inner.closed {
                inner.scheduled = false;
                self.wake(inner);
                return false;
            }
            inner.running_on = Some(std::thread::current().id());
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
        let mut inner = lock(&self.inner);
        inner.running_on = None;
        let again = !inner.closed && inner.armed && !inner.queue.is_empty();
        if again {
            inner.armed = false;
        } else {
            inner.scheduled = false;
        }
        let quiet = std::mem::take(&mut inner.after_quiet);
        self.wake(inner);
        quiet.into_iter().for_each(|action| action());
        again
    }

    /// Runs `action` once no callback of this watcher is running: now, or on the
    /// delivery thread right after the running one returns.
    pub(crate) fn after_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        let mut inner = lock(&self.inner);
        if inner.running_on.is_some() {
            inner.after_quiet.push(action);
        } else {
            drop(inner);
            action();
        }
    }

    /// The owner closes the watch: unfile it, stop delivery, and wait until no callback
    /// runs on another thread. On a delivery thread it does not wait: no callback starts
    /// after this, and one running now may still be finishing (see `delivery`).
    pub(super) fn close(&self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unregister(self.id);
        }
        let mut inner = lock(&self.inner);
        inner.closed = true;
        inner.clear();
        let me = std::thread::current().id();
        while !delivery::on_delivery_thread() && inner.running_on.is_some_and(|t| t != me) {
            inner = self.wait(inner, None);
        }
        self.wake(inner);
    }

    /// After the store ended this watch: a callback watch delivers its last events
    /// (CANCELED included) before this returns. On a delivery thread — a callback closing
    /// a store — waiting could wait for itself or for a callback that waits for this one,
    /// so the rest is discarded and nothing is waited for.
    pub(crate) fn quiesce_after_end(&self) {
        if matches!(self.sink, Sink::Poll) {
            return;
        }
        // A ready watch's events wait for its owner: only a running hook is waited for.
        let drained_here = matches!(self.sink, Sink::Callback(_));
        let mut inner = lock(&self.inner);
        if delivery::on_delivery_thread() {
            inner.closed = true;
            inner.clear();
            return;
        }
        let me = std::thread::current().id();
        loop {
            let running_elsewhere = inner.running_on.is_some_and(|t| t != me);
            let pending = drained_here && !inner.closed && !inner.queue.is_empty();
            if !running_elsewhere && !pending {
                break;
            }
            inner = self.wait(inner, None);
        }
    }

    pub(super) fn next(&self, timeout: Option<Duration>) -> Result<Event> {
        if matches!(self.sink, Sink::Callback(_)) {
            return Err(Error::invalid(
                "this watch delivers to a callback; it cannot be polled",
            ));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = lock(&self.inner);
        loop {
            if inner.closed || inner.finished {
                return Err(Error::closed("watch"));
            }
            if let Some(event) = inner.take() {
                return Ok(event);
            }
            // Found empty: a ready watch's next queued event runs its hook.
            inner.armed = true;
            let left = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "no event within {} ms",
                                timeout.unwrap_or_default().as_millis()
                            ),
                        ));
                    }
                    Some(deadline - now)
                }
            };
            inner = self.wait(inner, left);
        }
    }
}

/// An open watch. Poll it with [`Watch::next`] (or let its callback run); closing or
/// dropping it unregisters the watcher.
pub struct Watch {
    pub(super) watcher: Arc<Watcher>,
}

impl Watch {
    /// The next event: waits up to `timeout` (`None`: forever, zero: not at all).
    /// `Timeout` when none came, `Closed` after the final CANCELED was taken or once the
    /// watch is closed.
    pub fn next(&self, timeout: Option<Duration>) -> Result<Event> {
        self.watcher.next(timeout)
    }

    /// Ends the watch. When this returns its callback is never called again, and is not
    /// running unless this was called on a delivery thread (from inside a callback), where
    /// it does not wait. Idempotent.
    pub fn close(&self) {
        self.watcher.close();
    }

    /// Runs `action` once this watch's callback is not running (at once if it is not).
    pub fn when_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        self.watcher.after_quiet(action);
    }

    /// What the watch is on.
    pub fn target(&self) -> &str {
        &self.watcher.target
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watcher.close();
    }
}
