//! The hub of one store: its watcher registry, the dispatcher the feed calls, and the
//! per-watcher queues that `Watch::next` and the delivery pool drain.
//!
//! Locks, always taken in this order and never the other way round:
//! feed's own lock (mem: the backend's RwLock) → `Hub::state` → `Watcher::inner`.
//! The dispatcher holds `Hub::state` while it queues an event, and PROGRESS is queued
//! under the same lock, so a bookmark can never overtake an event it claims to cover.
//! No lock is held while a callback runs.

use super::delivery;
use super::registry::Registry;
use super::{CancelReason, Event, EventKind, WatchOptions};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{matches_prefix, validate_key, validate_prefix};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// What a watch wants before live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpMode {
    /// Nothing: live events from registration on.
    Live,
    /// The live entries in scope, then SYNCED.
    Snapshot,
    /// Every retained event in scope at or after `start`; `with_prev` when the watcher
    /// wants each event's previous value (also for the first replayed event of a key).
    Replay { start: u64, with_prev: bool },
}

/// What the feed hands to a registration, inside its critical section.
#[derive(Debug, Clone, Default)]
pub struct CatchUp {
    /// Entries in scope, in revision order (replay) or key order (snapshot), each with
    /// the key's previous live entry when the feed knows it.
    pub entries: Vec<(Entry, Option<Entry>)>,
    /// The revision the catch-up is complete through: live dispatch continues after it.
    pub through: u64,
    /// A replay could not be complete: some event in scope at or after the start is gone.
    pub history_lost: bool,
}

/// A source of events for a hub: it calls [`Hub::dispatch`] with every write, in
/// revision order, and serves catch-ups atomically with respect to those calls.
pub trait Feed: Send + Sync {
    /// Computes the catch-up for `target` (a key, or a prefix when `prefix`) and calls
    /// `register` with it such that every event after `CatchUp::through` is dispatched
    /// after `register` returns, and none at or before it is dispatched afterwards.
    fn catch_up(
        &self,
        target: &str,
        prefix: bool,
        mode: CatchUpMode,
        register: &mut dyn FnMut(CatchUp),
    ) -> Result<()>;

    /// A watcher on `target` left the hub (closed, ended, or never registered): a feed
    /// that subscribes per target may stop following it. Called under the hub's lock.
    fn release(&self, _target: &str, _prefix: bool) {}

    /// The hub closed: stop feeding it and release server-side resources.
    fn shutdown(&self) {}
}

/// What a callback watch runs for each event.
pub type Callback = Box<dyn FnMut(&Event) + Send>;

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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
                self.feed.release(&watcher.target, watcher.options.prefix);
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

    /// Opens a watch on `target`; `callback` makes it a callback watch.
    pub fn watch(
        self: &Arc<Self>,
        target: &str,
        options: WatchOptions,
        callback: Option<Callback>,
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
        let has_callback = callback.is_some();
        let ticks = options.progress_interval.is_some_and(|i| !i.is_zero());
        delivery::start_threads(has_callback, ticks)?;
        let watcher = Arc::new_cyclic(|me| Watcher {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            target: target.into(),
            options,
            hub: Arc::downgrade(self),
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
            callback: callback.map(Mutex::new),
            me: me.clone(),
        });
        let mut registered = Err(Error::internal("the feed never called register"));
        self.feed
            .catch_up(target, watcher.options.prefix, mode, &mut |catch_up| {
                registered = self.register(&watcher, mode, catch_up, false);
            })?;
        if matches!(registered, Ok(false)) && watcher.options.resync && !lock(&watcher.inner).ended
        {
            // The replay's history is gone and the watcher asked for a fresh snapshot
            // instead of CANCELED(history lost).
            registered = Err(Error::internal("the feed never called register"));
            self.feed.catch_up(
                target,
                watcher.options.prefix,
                CatchUpMode::Snapshot,
                &mut |catch_up| {
                    registered = self.register(&watcher, CatchUpMode::Snapshot, catch_up, true);
                },
            )?;
        }
        if !matches!(registered, Ok(true)) {
            // Not filed (refused, or ended at once by history lost): the feed may forget it.
            self.feed.release(target, watcher.options.prefix);
        }
        registered?;
        if ticks {
            delivery::watch_progress(&watcher);
        }
        if has_callback {
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

    fn unregister(&self, id: u64) {
        let mut state = lock(&self.state);
        if let Some(watcher) = state.registry.remove(id) {
            self.feed.release(&watcher.target, watcher.options.prefix);
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
            self.feed.release(&watcher.target, watcher.options.prefix);
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

/// A queued event, and whether it counts against the watcher's buffer: catch-up (a
/// snapshot, a replay, a resync) and the backlog read after a break do not.
struct Queued {
    event: Event,
    exempt: bool,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Queued>,
    /// How many queued events are exempt from the buffer bound.
    exempt: usize,
    /// Live events may have been lost and a fresh snapshot is on its way: events are not
    /// queued (the snapshot covers them) and no PROGRESS is sent until it arrives.
    resyncing: bool,
    /// The final CANCELED is queued: nothing more will be.
    ended: bool,
    /// The owner closed the watch: nothing more is delivered.
    closed: bool,
    /// The final CANCELED was taken.
    finished: bool,
    /// Every matching event up to here is queued (or was delivered).
    last_revision: u64,
    /// A delivery thread owns this watcher until it puts it back.
    scheduled: bool,
    /// The thread inside the callback right now.
    running_on: Option<ThreadId>,
    /// Threads blocked on `Watcher::changed`: a change wakes them only when there are
    /// some, so an unread poll watch costs no futex call per event.
    waiters: usize,
    /// Run once no callback is running (see `delivery::when_all_quiet`).
    after_quiet: Vec<Box<dyn FnOnce() + Send>>,
}

impl Inner {
    fn live_len(&self) -> usize {
        self.queue.len() - self.exempt
    }

    fn push(&mut self, event: Event, exempt: bool) {
        self.exempt += usize::from(exempt);
        self.queue.push_back(Queued { event, exempt });
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.exempt = 0;
    }

    fn end(&mut self, reason: CancelReason, last_revision: u64, message: String) {
        self.last_revision = last_revision;
        self.ended = true;
        self.push(Event::canceled(reason, last_revision, message), false);
    }

    fn take(&mut self) -> Option<Event> {
        let Queued { event, exempt } = self.queue.pop_front()?;
        self.exempt -= usize::from(exempt);
        if event.kind == EventKind::Canceled {
            self.finished = true;
        }
        Some(event)
    }
}

/// What a possible loss of events did to one watcher.
enum Loss {
    None,
    Ended,
    Resync,
}

pub(crate) struct Watcher {
    id: u64,
    target: Box<str>,
    options: WatchOptions,
    hub: Weak<Hub>,
    inner: Mutex<Inner>,
    changed: Condvar,
    callback: Option<Mutex<Callback>>,
    /// Itself, so a notification can hand an `Arc` to the delivery pool.
    me: Weak<Watcher>,
}

impl Watcher {
    fn matches(&self, key: &str) -> bool {
        if self.options.prefix {
            matches_prefix(key, &self.target)
        } else {
            key == &*self.target
        }
    }

    /// The watched key or prefix, and whether it is a prefix.
    pub(crate) fn scope(&self) -> (&str, bool) {
        (&self.target, self.options.prefix)
    }

    pub(crate) fn progress_interval(&self) -> Option<Duration> {
        self.options.progress_interval.filter(|i| !i.is_zero())
    }

    pub(crate) fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.upgrade()
    }

    /// Queues a catch-up (registration or resync) in `inner`, ahead of live events.
    fn queue_catch_up(
        &self,
        inner: &mut Inner,
        mode: CatchUpMode,
        catch_up: CatchUp,
        resync: bool,
    ) {
        let options = &self.options;
        for (entry, prev) in catch_up.entries {
            let wanted = entry.is_live() || !options.ignore_deletes;
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
    fn lose(&self, candidates: &[(u64, u64)], why: &str) -> Loss {
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
    fn offer(&self, entry: &Entry, prev: Option<&Entry>, backlog: bool) -> bool {
        let mut inner = lock(&self.inner);
        if inner.ended || inner.closed {
            return false;
        }
        if entry.revision <= inner.last_revision || inner.resyncing {
            return true;
        }
        if self.options.ignore_deletes && !entry.is_live() {
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
    fn notify(&self, inner: MutexGuard<'_, Inner>) {
        if self.callback.is_some() {
            drop(inner);
            self.schedule_if_pending();
        } else {
            self.wake(inner);
        }
    }

    /// Wakes the threads blocked on `changed`, if any, once `inner` is released.
    fn wake(&self, inner: MutexGuard<'_, Inner>) {
        let waiting = inner.waiters > 0;
        drop(inner);
        if waiting {
            self.changed.notify_all();
        }
    }

    /// Blocks on `changed` (at most `timeout`), counted in `waiters` meanwhile.
    fn wait<'a>(
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
    fn schedule_if_pending(&self) {
        let mut inner = lock(&self.inner);
        if inner.scheduled || inner.closed || inner.queue.is_empty() {
            return;
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
        let Some(callback) = &self.callback else {
            return false;
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
    fn close(&self) {
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
        if self.callback.is_none() {
            return;
        }
        let mut inner = lock(&self.inner);
        if delivery::on_delivery_thread() {
            inner.closed = true;
            inner.clear();
            return;
        }
        let me = std::thread::current().id();
        loop {
            let running_elsewhere = inner.running_on.is_some_and(|t| t != me);
            let pending = !inner.closed && !inner.queue.is_empty();
            if !running_elsewhere && !pending {
                break;
            }
            inner = self.wait(inner, None);
        }
    }

    fn next(&self, timeout: Option<Duration>) -> Result<Event> {
        if self.callback.is_some() {
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
    watcher: Arc<Watcher>,
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
