//! The `nats://` feed: one server-side consumer per store carries every watched write to
//! the hub, whatever the number of watchers.
//!
//! ```text
//!  bucket stream ──(live pull consumer, filter = union of watched subjects)──▶ run()
//!                                                    │ under the gate, in stream order
//!  Watch::open ─▶ catch_up() under the gate          ▼
//!     temporary consumer for a snapshot/replay    Hub::dispatch(entry, prev)
//!     (deleted when read), then register
//! ```
//!
//! The gate is the seam's critical section: the consumer task holds it while it
//! dispatches a message, and a catch-up holds it from reading the stream to registering.
//! A registration adds the watch's subject to the filter set and bumps its generation;
//! the task drops any message it pulled under an older generation and recreates the
//! consumer from `Hub::dispatched() + 1`, which no dispatch has moved past while the gate
//! was held. Each watcher's catch-up ends at a seam revision at or after that point and
//! the hub skips live events at or below a watcher's seam, so nothing is lost or doubled.
//!
//! The same recreation from `dispatched + 1` absorbs everything that breaks a consumer:
//! a reconnect, a server killed and restarted (its ephemeral consumers are gone), missed
//! heartbeats. Watchers never see it. A filter set past [`MAX_FILTERS`] subjects collapses
//! to the whole bucket and the registry filters alone, so the server-side consumer count
//! stays one.
//!
//! History lost is decided conservatively, per key in scope: a replay from `S` cannot
//! prove completeness when a key's oldest retained message is after `S` and either the key
//! holds the bucket's full `history` (older ones may have been dropped) or that message is
//! a purge (which rolls up what came before); or when the stream has size/age limits and
//! its first retained sequence is after `S`. After a break the feed checks the stream
//! before resuming: if its sequence went backwards (a server that lost acknowledged
//! writes) or its limits dropped what comes next, every watcher ends with
//! CANCELED(history lost) at the revision it is complete through. Not detected: a key
//! written more than `history` times while the feed was disconnected (its oldest of those
//! revisions are gone without a trace in the stream's bounds).
//!
//! Previous values (`prev_value`) come from a cache of the last entry of each key some
//! prev-wanting watcher covers, filled on first sight from the key's history and kept up to
//! date by every dispatched message; it is cleared when the filter set changes, since keys
//! leaving the filter stop being followed.

use super::hub::{CatchUp, CatchUpMode, Feed, Hub};
use super::CancelReason;
use crate::backend::nats::{map_error, NatsBackend};
use crate::entry::{Entry, Operation};
use crate::error::{Error, ErrorKind, Result};
use crate::key;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// More distinct watched subjects than this and the live consumer follows the whole bucket.
pub const MAX_FILTERS: usize = 64;

/// How long the server keeps the live consumer of a process that vanished.
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);
/// Pull requests wait this long; heartbeats inside them reveal a dead connection.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
const PULL_HEARTBEAT: Duration = Duration::from_secs(3);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub struct NatsFeed {
    backend: Arc<NatsBackend>,
    hub: OnceLock<Weak<Hub>>,
    gate: tokio::sync::Mutex<()>,
    subjects: Mutex<Subjects>,
    generation: watch::Sender<u64>,
    closed: AtomicBool,
    /// Consumers created by this feed, live and temporary (diagnostics and tests).
    consumers_created: AtomicU64,
    /// Set when the consumer task has ended (and deleted its consumer).
    stopped: (Mutex<bool>, Condvar),
}

/// The watched subjects, each with the number of watchers that need it.
#[derive(Default)]
struct Subjects {
    counts: BTreeMap<String, usize>,
    prev_cache: HashMap<Arc<str>, Entry>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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

/// What a replay saw of one key.
struct KeyReplay {
    first_revision: u64,
    first_is_purge: bool,
    count: i64,
    last: Entry,
}

fn timeout_error(what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what}: no answer within {} ms", limit.as_millis()),
    )
}

impl NatsFeed {
    pub fn new(backend: Arc<NatsBackend>) -> Arc<NatsFeed> {
        Arc::new(NatsFeed {
            backend,
            hub: OnceLock::new(),
            gate: tokio::sync::Mutex::new(()),
            subjects: Mutex::new(Subjects::default()),
            generation: watch::channel(0).0,
            closed: AtomicBool::new(false),
            consumers_created: AtomicU64::new(0),
            stopped: (Mutex::new(false), Condvar::new()),
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

    /// How many server-side consumers this feed has created so far.
    pub fn consumers_created(&self) -> u64 {
        self.consumers_created.load(Ordering::Relaxed)
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

    /// The live loop: (re)create the consumer from `dispatched + 1` whenever the filter
    /// set changes or the consumer breaks, and dispatch its messages under the gate.
    async fn run(self: Arc<Self>) {
        let mut generation_seen = self.generation.subscribe();
        let mut retry = RETRY_MIN;
        let mut broken = false;
        while !self.closed.load(Ordering::Acquire) {
            let Some(hub) = self.hub() else { return };
            // Marked before reading: a change made after the read still wakes the loop.
            generation_seen.mark_unchanged();
            let (filters, generation) = self.current_filters();
            if filters.is_empty() {
                drop(hub);
                if generation_seen.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let start = hub.dispatched() + 1;
            if broken {
                // After a break, make sure the stream still holds what comes next.
                match self.hole_after(start - 1).await {
                    Ok(Some(message)) => {
                        hub.end_all(CancelReason::HistoryLost, &message);
                        broken = false;
                        continue;
                    }
                    Ok(None) => broken = false,
                    Err(_) => {
                        drop(hub);
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RETRY_MAX);
                        continue;
                    }
                }
            }
            drop(hub);
            let stream = self.stream();
            let created = tokio::time::timeout(
                self.backend.request_timeout(),
                stream.create_consumer(pull::Config {
                    description: Some("coordkv watch feed".into()),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ack_policy: AckPolicy::None,
                    filter_subjects: filters,
                    inactive_threshold: INACTIVE_THRESHOLD,
                    memory_storage: true,
                    num_replicas: 1,
                    ..Default::default()
                }),
            )
            .await;
            let consumer = match created {
                Ok(Ok(consumer)) => consumer,
                _ => {
                    broken = true;
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            };
            self.consumers_created.fetch_add(1, Ordering::Relaxed);
            let name = consumer.cached_info().name.clone();
            let messages = consumer
                .stream()
                .expires(PULL_EXPIRES)
                .heartbeat(PULL_HEARTBEAT)
                .messages()
                .await;
            if let Ok(mut messages) = messages {
                retry = RETRY_MIN;
                loop {
                    tokio::select! {
                        changed = generation_seen.changed() => {
                            if changed.is_err() || *generation_seen.borrow() != generation {
                                break;
                            }
                        }
                        next = messages.next() => match next {
                            Some(Ok(message)) => {
                                if !self.deliver(&message, generation).await {
                                    break;
                                }
                            }
                            _ => {
                                broken = true;
                                tokio::time::sleep(retry).await;
                                retry = (retry * 2).min(RETRY_MAX);
                                break;
                            }
                        }
                    }
                    if self.closed.load(Ordering::Acquire) {
                        break;
                    }
                }
            }
            let limit = self.backend.request_timeout();
            let _ = tokio::time::timeout(limit, stream.delete_consumer(&name)).await;
        }
    }

    /// Whether the stream lost events after `dispatched` that watchers have not seen:
    /// its sequence went backwards (a server that lost acknowledged writes), or its
    /// size/age limits dropped the messages that come next. `Some(why)` if so.
    async fn hole_after(&self, dispatched: u64) -> Result<Option<String>> {
        let info = self.stream_state().await?;
        let state = &info.state;
        if state.last_sequence < dispatched {
            return Ok(Some(format!(
                "the bucket's stream went back from revision {dispatched} to {}",
                state.last_sequence
            )));
        }
        let limited = info.config.max_bytes > 0
            || info.config.max_messages > 0
            || !info.config.max_age.is_zero();
        if limited && state.first_sequence > dispatched + 1 {
            return Ok(Some(format!(
                "the bucket's stream no longer holds revisions {} to {}",
                dispatched + 1,
                state.first_sequence - 1
            )));
        }
        Ok(None)
    }

    /// Dispatches one message of the live consumer; false when the consumer is stale (the
    /// filter set changed after it was created) and must be recreated.
    async fn deliver(&self, message: &async_nats::jetstream::Message, generation: u64) -> bool {
        let _gate = self.gate.lock().await;
        if *self.generation.borrow() != generation || self.closed.load(Ordering::Acquire) {
            return false;
        }
        let Some(hub) = self.hub() else {
            return false;
        };
        // Without its metadata a message has no revision: recreate rather than skip it.
        let Ok(info) = message.info() else {
            return false;
        };
        let revision = info.stream_sequence;
        let timestamp_ns = info.published.unix_timestamp_nanos().max(0) as u64;
        let Some(nats_key) = message.subject.strip_prefix(self.backend.read_prefix()) else {
            return true;
        };
        // A NATS key in a spelling coordkv never writes names no coordkv key: skipped.
        let Ok(key) = key::from_nats(nats_key) else {
            return true;
        };
        let entry = Entry {
            key: Arc::from(key),
            value: message.payload.clone(),
            revision,
            operation: crate::backend::nats::operation_of(message.headers.as_ref()),
            timestamp_ns,
        };
        let prev = self.prev_of(&hub, &entry).await;
        hub.dispatch(&entry, prev.as_ref());
        true
    }

    /// The key's previous live entry, when a watcher wants it.
    async fn prev_of(&self, hub: &Hub, entry: &Entry) -> Option<Entry> {
        let cached = lock(&self.subjects).prev_cache.get(&entry.key).cloned();
        let previous = match cached {
            Some(last) => last,
            None if hub.prev_wanted(&entry.key) => {
                self.last_before(&entry.key, entry.revision).await
            }
            None => return None,
        };
        lock(&self.subjects)
            .prev_cache
            .insert(entry.key.clone(), entry.clone());
        previous.is_live().then_some(previous)
    }

    /// The key's newest entry before `revision`, read from its retained history; an entry
    /// with revision 0 (and no value) when there is none.
    async fn last_before(&self, key_text: &str, revision: u64) -> Entry {
        let nats_key = key::to_nats(key_text);
        let mut last: Option<Entry> = None;
        let _ = self
            .backend
            .walk(
                &nats_key,
                DeliverPolicy::All,
                false,
                &mut |_, operation, value, rev, ts| {
                    if rev < revision {
                        last = Some(Entry {
                            key: Arc::from(key_text),
                            value,
                            revision: rev,
                            operation,
                            timestamp_ns: ts,
                        });
                    }
                },
            )
            .await;
        last.unwrap_or(Entry {
            key: Arc::from(key_text),
            value: Default::default(),
            revision: 0,
            operation: Operation::Delete,
            timestamp_ns: 0,
        })
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
        match tokio::time::timeout(limit, stream.info()).await {
            Ok(Ok(info)) => Ok(info.clone()),
            Ok(Err(e)) => Err(map_error(&e)),
            Err(_) => Err(timeout_error("read the bucket's stream info", limit)),
        }
    }

    async fn catch_up_async(
        &self,
        target: &str,
        prefix: bool,
        mode: CatchUpMode,
        register: &mut dyn FnMut(CatchUp),
    ) -> Result<()> {
        let _gate = self.gate.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        let info = self.stream_state().await?;
        let last_sequence = info.state.last_sequence;
        let filter = filter_of(target, prefix);
        let in_scope = |key: &str| {
            if prefix {
                key::matches_prefix(key, target)
            } else {
                key == target
            }
        };
        let decode = |nats_key: &str| key::from_nats(nats_key).ok().filter(|k| in_scope(k));
        let catch_up = match mode {
            CatchUpMode::Live => CatchUp {
                through: last_sequence,
                ..CatchUp::default()
            },
            CatchUpMode::Snapshot => {
                let mut seen_through = last_sequence;
                let mut latest: BTreeMap<String, Entry> = BTreeMap::new();
                self.count_temporary_consumer();
                self.backend
                    .walk(
                        &filter,
                        DeliverPolicy::LastPerSubject,
                        false,
                        &mut |nats_key, operation, value, revision, ts| {
                            seen_through = seen_through.max(revision);
                            if let Some(key) = decode(nats_key) {
                                let entry = Entry {
                                    key: Arc::from(key.as_str()),
                                    value,
                                    revision,
                                    operation,
                                    timestamp_ns: ts,
                                };
                                latest.insert(key, entry);
                            }
                        },
                    )
                    .await?;
                CatchUp {
                    entries: latest
                        .into_values()
                        .filter(Entry::is_live)
                        .map(|e| (e, None))
                        .collect(),
                    through: seen_through,
                    history_lost: false,
                }
            }
            CatchUpMode::Replay(start) => {
                let history = info.config.max_messages_per_subject;
                let mut seen_through = last_sequence;
                let mut entries: Vec<(Entry, Option<Entry>)> = Vec::new();
                let mut per_key: HashMap<String, KeyReplay> = HashMap::new();
                self.count_temporary_consumer();
                self.backend
                    .walk(
                        &filter,
                        DeliverPolicy::ByStartSequence {
                            start_sequence: start,
                        },
                        false,
                        &mut |nats_key, operation, value, revision, ts| {
                            seen_through = seen_through.max(revision);
                            let Some(key) = decode(nats_key) else { return };
                            let entry = Entry {
                                key: Arc::from(key.as_str()),
                                value,
                                revision,
                                operation,
                                timestamp_ns: ts,
                            };
                            let prev = match per_key.get_mut(&key) {
                                Some(seen) => {
                                    let prev = seen.last.is_live().then(|| seen.last.clone());
                                    seen.last = entry.clone();
                                    seen.count += 1;
                                    prev
                                }
                                None => {
                                    let seen = KeyReplay {
                                        first_revision: revision,
                                        first_is_purge: operation == Operation::Purge,
                                        count: 1,
                                        last: entry.clone(),
                                    };
                                    per_key.insert(key, seen);
                                    None
                                }
                            };
                            entries.push((entry, prev));
                        },
                    )
                    .await?;
                let limited_stream = info.config.max_bytes > 0
                    || info.config.max_messages > 0
                    || !info.config.max_age.is_zero();
                let stream_dropped = limited_stream && info.state.first_sequence > start;
                let key_dropped = per_key.values().any(|seen| {
                    seen.first_revision > start
                        && (seen.first_is_purge || (history > 0 && seen.count >= history))
                });
                CatchUp {
                    entries,
                    through: seen_through,
                    history_lost: stream_dropped || key_dropped,
                }
            }
        };
        if lock(&self.subjects).counts.is_empty() {
            // Nobody was watching: the live consumer may start at the stream's end
            // instead of replaying the bucket's whole retained history into the hub.
            if let Some(hub) = self.hub() {
                hub.advance_to(last_sequence);
            }
        }
        self.follow(filter);
        register(catch_up);
        Ok(())
    }

    fn count_temporary_consumer(&self) {
        self.consumers_created.fetch_add(1, Ordering::Relaxed);
    }
}

impl Feed for NatsFeed {
    fn catch_up(
        &self,
        target: &str,
        prefix: bool,
        mode: CatchUpMode,
        register: &mut dyn FnMut(CatchUp),
    ) -> Result<()> {
        self.backend
            .guarded("watch", self.catch_up_async(target, prefix, mode, register))
    }

    fn release(&self, target: &str, prefix: bool) {
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
