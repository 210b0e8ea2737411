//! The hub of one store: its watcher registry and the dispatcher the feed calls, which
//! fills the per-watcher queues (`watcher`) that `Watch::next` and the delivery pool drain.
//!
//! Locks, always taken in this order and never the other way round:
//! feed's own lock (mem: the backend's RwLock) → `Hub::state` → `Watcher::inner`.
//! The dispatcher holds `Hub::state` while it queues an event, and PROGRESS is queued
//! under the same lock, so a bookmark can never overtake an event it claims to cover.
//! No lock is held while a callback runs.

use super::delivery;
use super::feed::{CatchUp, CatchUpMode, Feed};
use super::registry::Registry;
use super::state::Inner;
use super::watcher::Watch;
pub(crate) use super::watcher::Watcher;
use super::watcher::{Loss, Sink};
use super::{CancelReason, Event, EventKind, WatchOptions};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{validate_key, validate_prefix};
use crate::sync::lock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What a callback watch runs for each event.
pub type Callback = Box<dyn FnMut(&Event) + Send>;

/// What a ready watch runs when events wait that its owner has not been told of.
pub type ReadyHook = Box<dyn Fn() + Send + Sync>;

/// How a watch's events leave its queue.
pub enum Delivery {
    /// The owner takes them with `Watch::next`.
    Poll,
    /// A delivery thread runs the callback for each, one at a time, in order.
    Callback(Callback),
    /// The owner takes them with `Watch::next` (without waiting), and a delivery thread
    /// runs the hook once events wait after the owner last found the queue empty: an
    /// event loop's wake-up (Go's runtime, asyncio) without a blocked thread per watch.
    Ready(ReadyHook),
}

struct HubState {
    registry: Registry<Arc<Watcher>>,
    /// The newest revision dispatched: every event up to it is in its watchers' queues.
    dispatched: u64,
    closed: bool,
}

pub struct Hub {
    state: Mutex<HubState>,
    feed: Arc<dyn Feed>,
    max_watchers: usize,
    next_id: AtomicU64,
}

impl Hub {
    pub fn new(feed: Arc<dyn Feed>, max_watchers: usize) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(HubState {
                registry: Registry::default(),
                dispatched: 0,
                closed: false,
            }),
            feed,
            max_watchers,
            next_id: AtomicU64::new(1),
        })
    }

    /// Live watchers (registered and not ended).
    pub fn watcher_count(&self) -> usize {
        lock(&self.state).registry.len()
    }

    /// Called by the feed with every write, in strictly increasing revision order.
    pub fn dispatch(&self, entry: &Entry, prev: Option<&Entry>) {
        self.dispatch_as(entry, prev, false);
    }

    /// Like [`Hub::dispatch`], for a write the feed reads back after a break (a reconnect,
    /// a server restart): the backlog is catch-up, not a sign that a watcher is slow, so
    /// it does not count against the watchers' buffers.
    pub fn dispatch_backlog(&self, entry: &Entry, prev: Option<&Entry>) {
        self.dispatch_as(entry, prev, true);
    }

    fn dispatch_as(&self, entry: &Entry, prev: Option<&Entry>, backlog: bool) {
        let mut state = lock(&self.state);
        if state.closed || entry.revision <= state.dispatched {
            return;
        }
        let mut ended = Vec::new();
        state.registry.for_each_match(&entry.key, |id, watcher| {
            if !watcher.offer(entry, prev, backlog) {
                ended.push(id);
            }
        });
        self.unfile(&mut state, ended);
        state.dispatched = entry.revision;
    }

    fn unfile(&self, state: &mut HubState, ids: Vec<u64>) {
        for id in ids {
            if let Some(watcher) = state.registry.remove(id) {
                self.feed.release(watcher.scope());
            }
        }
    }

    /// The feed found that events it never dispatched may be gone: any revision inside
    /// `candidates` (sorted, inclusive ranges) could have been a write to `key` (`None`:
    /// to any key). Every watcher in that scope still waiting for such a revision ends
    /// with CANCELED(history lost) at the revision before the first it may have missed,
    /// or, when it asked for `resync`, stops taking events until the feed hands it a fresh
    /// snapshot ([`Hub::finish_resync`]); those are returned. Others are untouched.
    pub(crate) fn lose(
        &self,
        key: Option<&str>,
        candidates: &[(u64, u64)],
        why: &str,
    ) -> Vec<Arc<Watcher>> {
        let mut state = lock(&self.state);
        if state.closed || candidates.is_empty() {
            return Vec::new();
        }
        let mut ended = Vec::new();
        let mut resync = Vec::new();
        let mut visit = |id: u64, watcher: &Arc<Watcher>| match watcher.lose(candidates, why) {
            Loss::None => {}
            Loss::Ended => ended.push(id),
            Loss::Resync => resync.push(watcher.clone()),
        };
        match key {
            Some(key) => {
                state.registry.for_each_match(key, &mut visit);
            }
            None => state.registry.for_each(&mut visit),
        }
        self.unfile(&mut state, ended);
        resync
    }

    /// Ends one watcher with CANCELED(`reason`) at the revision it is complete through.
    pub(crate) fn end_watcher(&self, watcher: &Watcher, reason: CancelReason, message: String) {
        let mut state = lock(&self.state);
        let mut inner = lock(&watcher.inner);
        if inner.ended || inner.closed {
            return;
        }
        let last = inner.last_revision;
        inner.end(reason, last, message);
        drop(inner);
        self.unfile(&mut state, vec![watcher.id]);
        drop(state);
        watcher.notify(lock(&watcher.inner));
    }

    /// Completes a resync started by [`Hub::lose`], inside the feed's critical section
    /// like a registration: the snapshot's values and SYNCED, all marked `resync`, then
    /// live events after `catch_up.through`.
    pub(crate) fn finish_resync(&self, watcher: &Watcher, catch_up: CatchUp) {
        let state = lock(&self.state);
        if state.closed {
            return;
        }
        let mut inner = lock(&watcher.inner);
        if inner.ended || inner.closed || !inner.resyncing {
            return;
        }
        inner.resyncing = false;
        watcher.queue_catch_up(&mut inner, CatchUpMode::Snapshot, catch_up, true);
        drop(state);
        watcher.notify(inner);
    }

    /// The newest revision dispatched (0 before the first).
    pub fn dispatched(&self) -> u64 {
        lock(&self.state).dispatched
    }

    /// Declares every event up to `revision` dispatched: for a feed whose hub has no
    /// watcher, for which that is trivially true.
    pub fn advance_to(&self, revision: u64) {
        let mut state = lock(&self.state);
        if state.registry.is_empty() {
            state.dispatched = state.dispatched.max(revision);
        }
    }

    /// Whether some live watcher of `key` asked for previous values.
    pub fn prev_wanted(&self, key: &str) -> bool {
        let mut wanted = false;
        lock(&self.state)
            .registry
            .for_each_match(key, |_, watcher| wanted |= watcher.options.prev_value);
        wanted
    }

    /// Opens a watch on `target`, delivered as `delivered_by` says.
    pub fn watch(
        self: &Arc<Self>,
        target: &str,
        options: WatchOptions,
        delivered_by: Delivery,
    ) -> Result<Watch> {
        if options.prefix {
            validate_prefix(target)?;
        } else {
            validate_key(target)?;
        }
        if options.snapshot && options.start_revision != 0 {
            return Err(Error::invalid(
                "a watch takes either snapshot or start_revision, not both",
            ));
        }
        if options.buffer_size == 0 {
            return Err(Error::invalid("watch buffer_size must be at least 1"));
        }
        let mode = if options.snapshot {
            CatchUpMode::Snapshot
        } else if options.start_revision != 0 {
            CatchUpMode::Replay {
                start: options.start_revision,
                with_prev: options.prev_value,
            }
        } else {
            CatchUpMode::Live
        };
        let pushed = !matches!(delivered_by, Delivery::Poll);
        let ticks = options.progress_interval.is_some_and(|i| !i.is_zero());
        delivery::start_threads(pushed, ticks)?;
        let watcher = Arc::new_cyclic(|me| Watcher {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            target: target.into(),
            options,
            hub: Arc::downgrade(self),
            // A ready watch's owner has seen nothing yet: the first event runs the hook.
            inner: Mutex::new(Inner {
                armed: true,
                ..Inner::default()
            }),
            changed: Condvar::new(),
            sink: Sink::from(delivered_by),
            me: me.clone(),
        });
        let mut registered = Err(Error::internal("the feed never called register"));
        self.feed.catch_up(watcher.scope(), mode, &mut |catch_up| {
            registered = self.register(&watcher, mode, catch_up, false);
        })?;
        if matches!(registered, Ok(false)) && watcher.options.resync && !lock(&watcher.inner).ended
        {
            // The replay's history is gone and the watcher asked for a fresh snapshot
            // instead of CANCELED(history lost).
            registered = Err(Error::internal("the feed never called register"));
            self.feed
                .catch_up(watcher.scope(), CatchUpMode::Snapshot, &mut |catch_up| {
                    registered = self.register(&watcher, CatchUpMode::Snapshot, catch_up, true);
                })?;
        }
        if !matches!(registered, Ok(true)) {
            // Not filed (refused, or ended at once by history lost): the feed may forget it.
            self.feed.release(watcher.scope());
        }
        registered?;
        if ticks {
            delivery::watch_progress(&watcher);
        }
        if pushed {
            watcher.schedule_if_pending();
        }
        Ok(Watch { watcher })
    }

    /// Registration proper, inside the feed's critical section; `Ok(false)` when the watch
    /// ended at once instead of being filed (or, asking for `resync`, found its replay's
    /// history gone and wants a snapshot instead). `resync` marks a snapshot as one.
    fn register(
        &self,
        watcher: &Arc<Watcher>,
        mode: CatchUpMode,
        catch_up: CatchUp,
        resync: bool,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(Error::closed("store"));
        }
        if state.registry.len() >= self.max_watchers {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "this store already has {} watchers (max_watchers)",
                    self.max_watchers
                ),
            ));
        }
        let options = &watcher.options;
        let mut inner = lock(&watcher.inner);
        if let CatchUpMode::Replay { start, .. } = mode {
            if catch_up.history_lost {
                if options.resync {
                    return Ok(false);
                }
                let message = format!(
                    "events at or after revision {start} on {:?} are no longer retained",
                    &*watcher.target
                );
                inner.end(CancelReason::HistoryLost, start - 1, message);
                return Ok(false);
            }
        }
        watcher.queue_catch_up(&mut inner, mode, catch_up, resync);
        drop(inner);
        state
            .registry
            .insert(watcher.id, &watcher.target, options.prefix, watcher.clone());
        Ok(true)
    }

    pub(super) fn unregister(&self, id: u64) {
        let mut state = lock(&self.state);
        if let Some(watcher) = state.registry.remove(id) {
            self.feed.release(watcher.scope());
        }
    }

    /// Queues PROGRESS for a watcher that is still registered; false once it is not.
    pub(crate) fn progress(&self, watcher: &Watcher) -> bool {
        let state = lock(&self.state);
        if state.closed {
            return false;
        }
        let mut inner = lock(&watcher.inner);
        if inner.ended || inner.closed {
            return false;
        }
        // A full queue skips this bookmark (the next one says as much), and so does a
        // resync in progress, which is not complete through anything new yet.
        if inner.live_len() < watcher.options.buffer_size && !inner.resyncing {
            let revision = state.dispatched.max(inner.last_revision);
            inner.last_revision = revision;
            inner.push(Event::marker(EventKind::Progress, revision), false);
            watcher.notify(inner);
        }
        true
    }

    /// Ends every live watch with CANCELED(`reason`), each complete through what it was
    /// queued: the feed found a hole it cannot fill (history lost while disconnected).
    /// The hub stays open for new watches.
    pub fn end_all(&self, reason: CancelReason, message: &str) {
        let mut state = lock(&self.state);
        for watcher in state.registry.drain() {
            self.feed.release(watcher.scope());
            let mut inner = lock(&watcher.inner);
            let last = inner.last_revision;
            inner.end(reason, last, message.to_string());
            watcher.notify(inner);
        }
    }

    /// Ends every watch with CANCELED(store closed) and waits until callbacks are quiet
    /// (on a delivery thread: does not wait, see `delivery`).
    pub fn close(&self) {
        for watcher in self.end_for_close() {
            watcher.quiesce_after_end();
        }
    }

    /// The first part of [`Hub::close`]: ends every watch and returns the callback
    /// watches the caller must let quiesce (none when the hub was closed already).
    pub(crate) fn end_for_close(&self) -> Vec<Arc<Watcher>> {
        let watchers = {
            let mut state = lock(&self.state);
            if state.closed {
                return Vec::new();
            }
            state.closed = true;
            let dispatched = state.dispatched;
            let watchers = state.registry.drain();
            for watcher in &watchers {
                let mut inner = lock(&watcher.inner);
                let last = inner.last_revision.max(dispatched);
                inner.end(
                    CancelReason::StoreClosed,
                    last,
                    "the store was closed".into(),
                );
                watcher.notify(inner);
            }
            watchers
        };
        self.feed.shutdown();
        watchers
    }
}
