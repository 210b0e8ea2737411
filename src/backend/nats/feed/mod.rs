//! The `nats://` feed: one server-side consumer per store carries every watched write to
//! the hub, whatever the number of watchers.
//!
//! ```text
//!  bucket stream ──(live pull consumer, filter = union of watched subjects)──▶ run()
//!                                       batches of what has arrived, under the gate:
//!                                       skipped revisions checked (gaps), then
//!  Watch::open ─▶ catch_up_async()          Hub::lose(..) and Hub::dispatch(entry, prev)
//!     bulk read beside the live consumer,
//!     then under the gate: the writes made meanwhile, register
//! ```
//!
//! The gate is the seam's critical section: the consumer task holds it while it
//! dispatches a batch, and a catch-up holds it only for its last step (reading what was
//! written since its bulk read, which is short, and registering), so opening a snapshot
//! of a large prefix does not stall live dispatch for others. A registration adds the
//! watch's subject to the filter set and bumps its generation; the task drops any batch
//! pulled under an older generation and recreates the consumer from `Hub::dispatched() +
//! 1`, which no dispatch has moved past while the gate was held. Each watcher's catch-up
//! ends at a seam revision at or after that point and the hub skips live events at or
//! below a watcher's seam, so nothing is lost or doubled.
//!
//! The same recreation absorbs everything that breaks a consumer: a reconnect (the
//! client's connect event wakes the task at once, without waiting for missed
//! heartbeats), a server killed and restarted (its ephemeral consumers are gone), missed
//! heartbeats. What the stream already holds when the feed resumes is backlog, queued
//! outside the watchers' buffer bound. Before resuming the feed checks that the stream did
//! not go backwards (a server that lost acknowledged writes); if it did, every watcher
//! ends with CANCELED(history lost) at the revision it is complete through. A filter set
//! past [`MAX_FILTERS`] subjects collapses to the whole bucket and the registry filters
//! alone, so the server-side consumer count stays one.
//!
//! Losses: the consumer silently skips messages the server removed before it read them
//! (history limit, purge roll-ups, age or size limits). Each batch's skipped revisions are
//! checked against the stream (`gaps` explains how and why the consumer's pending count
//! cannot serve): a removed revision is attributed to the keys that can have held it, and
//! only watchers of those keys that have not seen past it end (or resync) right before
//! the first event after it. A replay from `S` is history-lost when a key in scope holds a
//! full history starting after `S` or starting with a purge, or when the stream's limits
//! dropped `S`.
//!
//! Previous values (`prev_value`) come from a cache of the last entry of each key some
//! prev-wanting watcher covers, filled on first sight from the key's history and kept up to
//! date by every dispatched message; it is cleared when the filter set changes, since keys
//! leaving the filter stop being followed. A replay with `prev_value` reads each key's
//! retained history from its start, so its first replayed event has its previous value.

mod catch_up;
mod gaps;
mod live;
mod losses;

use crate::backend::nats::errors::within;
use crate::backend::nats::NatsBackend;
use crate::entry::Entry;
use crate::error::Result;
use crate::key;
use crate::sync::lock;
use crate::watch::feed::{CatchUpMode, Feed, Register, Scope};
use crate::watch::Hub;
use async_nats::jetstream::stream::{Config as StreamConfig, Stream};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use tokio::sync::watch;

/// More distinct watched subjects than this and the live consumer follows the whole bucket.
pub const MAX_FILTERS: usize = 64;

pub struct NatsFeed {
    backend: Arc<NatsBackend>,
    /// The bucket's per-key history limit (0 or less: unlimited).
    history: i64,
    /// The bucket's stream drops old messages by age, size or count.
    limited: bool,
    hub: OnceLock<Weak<Hub>>,
    gate: tokio::sync::Mutex<()>,
    subjects: Mutex<Subjects>,
    generation: watch::Sender<u64>,
    closed: AtomicBool,
    /// Set when the consumer task has ended (and deleted its consumer).
    stopped: (Mutex<bool>, Condvar),
    /// The watched keys whose latest delivered message expires (see `losses`).
    expiring: Mutex<losses::Expiring>,
}

/// The watched subjects, each with the number of watchers that need it.
#[derive(Default)]
struct Subjects {
    counts: BTreeMap<String, usize>,
    prev_cache: HashMap<Arc<str>, Entry>,
}

/// The server-side filter of a watch target, relative to the bucket's prefix.
fn filter_of(target: &str, prefix: bool) -> String {
    if prefix {
        key::prefix_to_nats_filter(target).subject
    } else {
        key::to_nats(target)
    }
}

/// Whether `outer` (a filter) matches every subject `inner` matches. Tokens never hold
/// wildcards (the codec escapes `*` and `>`), so this is a textual check.
fn covers(outer: &str, inner: &str) -> bool {
    outer == ">"
        || outer == inner
        || outer
            .strip_suffix('>')
            .is_some_and(|stem| stem.ends_with('.') && inner.starts_with(stem))
}

/// The smallest set of filters matching what `wanted` matches, with no two overlapping
/// (the server refuses overlapping filters); `>` when too many remain.
fn minimal_cover<'a>(wanted: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut all: Vec<&String> = wanted.collect();
    // Shorter first: a covering filter is never longer than what it covers.
    all.sort_by_key(|f| f.len());
    let mut kept: Vec<String> = Vec::new();
    for filter in all {
        if !kept.iter().any(|k| covers(k, filter)) {
            kept.push(filter.clone());
        }
    }
    if kept.len() > MAX_FILTERS {
        return vec![">".to_string()];
    }
    kept
}

fn is_limited(config: &StreamConfig) -> bool {
    config.max_bytes > 0 || config.max_messages > 0 || !config.max_age.is_zero()
}

impl NatsFeed {
    pub fn new(backend: Arc<NatsBackend>) -> Arc<NatsFeed> {
        let config = &backend.stream().cached_info().config;
        let (history, limited) = (config.max_messages_per_subject, is_limited(config));
        Arc::new(NatsFeed {
            backend,
            history,
            limited,
            hub: OnceLock::new(),
            gate: tokio::sync::Mutex::new(()),
            subjects: Mutex::new(Subjects::default()),
            generation: watch::channel(0).0,
            closed: AtomicBool::new(false),
            stopped: (Mutex::new(false), Condvar::new()),
            expiring: Mutex::default(),
        })
    }

    /// Starts the live consumer task for `hub`. The task holds the hub weakly: the hub
    /// owns the feed.
    pub fn attach(self: &Arc<Self>, hub: &Arc<Hub>) {
        let _ = self.hub.set(Arc::downgrade(hub));
        let feed = self.clone();
        self.backend.runtime().spawn(async move {
            feed.clone().run().await;
            *lock(&feed.stopped.0) = true;
            feed.stopped.1.notify_all();
        });
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.get().and_then(Weak::upgrade)
    }

    fn stream(&self) -> Stream {
        self.backend.stream().clone()
    }

    fn current_filters(&self) -> (Vec<String>, u64) {
        let subjects = lock(&self.subjects);
        let generation = *self.generation.borrow();
        let prefix = self.backend.read_prefix();
        let filters = minimal_cover(subjects.counts.keys())
            .into_iter()
            .map(|f| format!("{prefix}{f}"))
            .collect();
        (filters, generation)
    }

    /// Adds a watcher's subject; one not covered yet changes the live consumer's filters.
    fn follow(&self, filter: String) {
        let mut subjects = lock(&self.subjects);
        let covered = subjects.counts.keys().any(|f| covers(f, &filter));
        *subjects.counts.entry(filter).or_insert(0) += 1;
        if !covered {
            subjects.prev_cache.clear();
            self.generation.send_modify(|g| *g += 1);
        }
    }

    async fn stream_state(&self) -> Result<async_nats::jetstream::stream::Info> {
        let limit = self.backend.request_timeout();
        let mut stream = self.stream();
        within(limit, "read the bucket's stream info", stream.info())
            .await
            .cloned()
    }
}

impl Feed for NatsFeed {
    fn catch_up(&self, scope: Scope, mode: CatchUpMode, register: Register) -> Result<()> {
        let Scope { target, prefix } = scope;
        self.backend.guarded(
            "watch",
            self.catch_up_async(target, prefix, mode, true, &mut *register),
        )
    }

    fn release(&self, Scope { target, prefix }: Scope) {
        let filter = filter_of(target, prefix);
        let mut subjects = lock(&self.subjects);
        if let Some(count) = subjects.counts.get_mut(&filter) {
            *count -= 1;
            if *count == 0 {
                subjects.counts.remove(&filter);
                // Still covered by another filter: the consumer's filters do not change.
                if !subjects.counts.keys().any(|f| covers(f, &filter)) {
                    subjects.prev_cache.clear();
                    self.generation.send_modify(|g| *g += 1);
                }
            }
        }
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.generation.send_modify(|g| *g += 1);
        // From a caller's thread, wait (bounded) until the task has deleted its consumer,
        // so a closed store leaves nothing on the server; on a runtime thread it cannot
        // wait, and the task still deletes it (or the server drops it when inactive).
        if tokio::runtime::Handle::try_current().is_err() && self.hub.get().is_some() {
            let limit = self.backend.request_timeout() * 2;
            let (stopped, wake) = &self.stopped;
            let guard = lock(stopped);
            let _ = wake
                .wait_timeout_while(guard, limit, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_filters() {
        assert!(covers(">", "a.b"));
        assert!(covers("a.>", "a.b"));
        assert!(covers("a.>", "a.b.>"));
        assert!(!covers("a.>", "ab.c"));
        assert!(!covers("a.b", "a.>"));
        assert!(covers("a.b", "a.b"));
    }

    #[test]
    fn minimal_cover_drops_what_is_covered_and_collapses_when_large() {
        let wanted: Vec<String> = ["a.>", "a.b", "b.c", "b.c.>", "a.x.>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut cover = minimal_cover(wanted.iter());
        cover.sort();
        assert_eq!(cover, vec!["a.>", "b.c", "b.c.>"]);
        let many: Vec<String> = (0..=MAX_FILTERS).map(|i| format!("k{i}")).collect();
        assert_eq!(minimal_cover(many.iter()), vec![">"]);
    }
}
