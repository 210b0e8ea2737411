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

use super::gaps::{self, clip_below, Gaps};
use super::hub::{CatchUp, CatchUpMode, Feed, Hub, Watcher};
use super::CancelReason;
use crate::backend::nats::{map_error, operation_of, NatsBackend};
use crate::entry::{Entry, Operation};
use crate::error::{Error, ErrorKind, Result};
use crate::key;
use async_nats::header::NATS_ROLLUP;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{Config as StreamConfig, Stream};
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
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
/// Most messages dispatched under the gate at once: what had already arrived.
const MAX_BATCH: usize = 256;
/// Most skipped revisions looked up one by one to tell a filtered-out write from a removed one.
const MAX_LOOKUPS: u64 = 64;

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

fn is_limited(config: &StreamConfig) -> bool {
    config.max_bytes > 0 || config.max_messages > 0 || !config.max_age.is_zero()
}

/// Waits `retry` (doubling it for next time), or less when the client reconnects.
async fn pause(retry: &mut Duration, connects: &mut watch::Receiver<u64>) {
    tokio::select! {
        _ = tokio::time::sleep(*retry) => {}
        _ = connects.changed() => {}
    }
    *retry = (*retry * 2).min(RETRY_MAX);
}

/// Revisions that may have held events of `key` (`None`: of any key) and are gone.
struct Lost {
    key: Option<Arc<str>>,
    ranges: Vec<(u64, u64)>,
    why: String,
}

/// What a replay saw of one key.
struct KeyReplay {
    first_revision: u64,
    first_is_purge: bool,
    count: i64,
    last: Entry,
}

/// A catch-up being read: the latest entry per key (snapshot) or every event since the
/// start with each key's previous entry (replay), from one or more walks in stream order.
struct Reading<'a> {
    mode: CatchUpMode,
    target: &'a str,
    prefix: bool,
    /// The newest revision read, in scope or not.
    seen_through: u64,
    latest: BTreeMap<Arc<str>, Entry>,
    events: Vec<(Entry, Option<Entry>)>,
    per_key: HashMap<Arc<str>, KeyReplay>,
}

impl<'a> Reading<'a> {
    fn new(mode: CatchUpMode, target: &'a str, prefix: bool) -> Reading<'a> {
        Reading {
            mode,
            target,
            prefix,
            seen_through: 0,
            latest: BTreeMap::new(),
            events: Vec::new(),
            per_key: HashMap::new(),
        }
    }

    fn add(&mut self, nats_key: &str, operation: Operation, value: Bytes, revision: u64, ts: u64) {
        if revision <= self.seen_through && !matches!(self.mode, CatchUpMode::Snapshot) {
            return;
        }
        self.seen_through = self.seen_through.max(revision);
        let Ok(key) = key::from_nats(nats_key) else {
            return;
        };
        let in_scope = if self.prefix {
            key::matches_prefix(&key, self.target)
        } else {
            key == self.target
        };
        if !in_scope {
            return;
        }
        let entry = Entry {
            key: Arc::from(key),
            value,
            revision,
            operation,
            timestamp_ns: ts,
        };
        match self.mode {
            CatchUpMode::Live => {}
            CatchUpMode::Snapshot => {
                let newer = self
                    .latest
                    .get(&entry.key)
                    .map_or(true, |known| known.revision < revision);
                if newer {
                    self.latest.insert(entry.key.clone(), entry);
                }
            }
            CatchUpMode::Replay { start, .. } => {
                let prev = match self.per_key.get_mut(&entry.key) {
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
                        self.per_key.insert(entry.key.clone(), seen);
                        None
                    }
                };
                if revision >= start {
                    self.events.push((entry, prev));
                }
            }
        }
    }

    /// The catch-up, complete through the stream's `last_sequence` (or what was read
    /// past it). A replay is history-lost when a key in scope may have dropped an event
    /// at or after the start: its oldest retained revision is after the start and is a
    /// purge or one of a full history; or when the stream's limits dropped the start.
    fn finish(self, last_sequence: u64, config: &StreamConfig, first_sequence: u64) -> CatchUp {
        let through = last_sequence.max(self.seen_through);
        match self.mode {
            CatchUpMode::Live => CatchUp {
                through: last_sequence,
                ..CatchUp::default()
            },
            CatchUpMode::Snapshot => CatchUp {
                entries: self
                    .latest
                    .into_values()
                    .filter(Entry::is_live)
                    .map(|e| (e, None))
                    .collect(),
                through,
                history_lost: false,
            },
            CatchUpMode::Replay { start, .. } => {
                let history = config.max_messages_per_subject;
                let stream_dropped = is_limited(config) && first_sequence > start;
                let key_dropped = self.per_key.values().any(|seen| {
                    seen.first_revision > start
                        && (seen.first_is_purge || (history > 0 && seen.count >= history))
                });
                CatchUp {
                    entries: self.events,
                    through,
                    history_lost: stream_dropped || key_dropped,
                }
            }
        }
    }
}

fn timeout_error(what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what}: no answer within {} ms", limit.as_millis()),
    )
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
    /// set changes, the consumer breaks or the client reconnects, and dispatch what it
    /// delivers in batches under the gate.
    async fn run(self: Arc<Self>) {
        let mut generation_seen = self.generation.subscribe();
        let mut connects = self.backend.connects();
        let mut retry = RETRY_MIN;
        let mut broken = false;
        let mut gaps = Gaps::default();
        while !self.closed.load(Ordering::Acquire) {
            let Some(hub) = self.hub() else { return };
            // Marked before reading: a change made after the read still wakes the loop.
            generation_seen.mark_unchanged();
            connects.mark_unchanged();
            let (filters, generation) = self.current_filters();
            if filters.is_empty() {
                drop(hub);
                if generation_seen.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let start = hub.dispatched() + 1;
            // After a break, what the stream already holds is backlog, not live traffic.
            let mut backlog_through = 0;
            if broken {
                match self.resume_check(start - 1).await {
                    Ok((Some(message), _)) => {
                        hub.end_all(CancelReason::HistoryLost, &message);
                        broken = false;
                        continue;
                    }
                    Ok((None, last_sequence)) => {
                        broken = false;
                        backlog_through = last_sequence;
                    }
                    Err(_) => {
                        drop(hub);
                        pause(&mut retry, &mut connects).await;
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
                    pause(&mut retry, &mut connects).await;
                    continue;
                }
            };
            self.consumers_created.fetch_add(1, Ordering::Relaxed);
            gaps.restart_after(start - 1);
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
                        _ = connects.changed() => {
                            // The old connection's consumer may be gone with its server.
                            broken = true;
                            break;
                        }
                        next = messages.next() => {
                            let Some(Ok(first)) = next else {
                                broken = true;
                                pause(&mut retry, &mut connects).await;
                                break;
                            };
                            // Whatever else has already arrived goes in the same batch.
                            let mut batch = vec![first];
                            let mut ended = false;
                            while batch.len() < MAX_BATCH {
                                match messages.next().now_or_never() {
                                    Some(Some(Ok(message))) => batch.push(message),
                                    Some(_) => {
                                        ended = true;
                                        break;
                                    }
                                    None => break,
                                }
                            }
                            match self.deliver(&batch, generation, &mut gaps, backlog_through).await {
                                Ok(true) if !ended => {}
                                Ok(false) => break,
                                _ => {
                                    broken = true;
                                    break;
                                }
                            }
                        }
                    }
                    if self.closed.load(Ordering::Acquire) {
                        break;
                    }
                }
            }
            // The replacement need not wait for the old consumer's deletion: only a
            // closing feed waits, so that a closed store leaves nothing on the server.
            let limit = self.backend.request_timeout();
            let deletion = async move {
                let _ = tokio::time::timeout(limit, stream.delete_consumer(&name)).await;
            };
            if self.closed.load(Ordering::Acquire) {
                deletion.await;
            } else {
                self.backend.runtime().spawn(deletion);
            }
        }
    }

    /// Before resuming after `dispatched`: whether the stream lost events watchers have not
    /// seen in a way no skip reveals, because its sequence went backwards (a server that
    /// lost acknowledged writes); `Some(why)` if so. Also returns the stream's last
    /// revision: what comes up to it is backlog.
    async fn resume_check(&self, dispatched: u64) -> Result<(Option<String>, u64)> {
        let info = self.stream_state().await?;
        let last = info.state.last_sequence;
        if last < dispatched {
            let why = format!("the bucket's stream went back from revision {dispatched} to {last}");
            return Ok((Some(why), last));
        }
        Ok((None, last))
    }

    /// Dispatches one batch of the live consumer; false when the consumer is stale (the
    /// filter set changed after it was created) and must be recreated. Skipped revisions
    /// that may have been lost events are checked first (see `gaps`), and the watchers
    /// they concern end (or resync) right before the first event they could have missed.
    async fn deliver(
        self: &Arc<Self>,
        batch: &[async_nats::jetstream::Message],
        generation: u64,
        gaps: &mut Gaps,
        backlog_through: u64,
    ) -> Result<bool> {
        let _gate = self.gate.lock().await;
        if *self.generation.borrow() != generation || self.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        let Some(hub) = self.hub() else {
            return Ok(false);
        };
        // Committed only once the batch is dispatched: a retry observes it again.
        let mut tracked = gaps.clone();
        let mut arrived = Vec::with_capacity(batch.len());
        let mut skipped = Vec::new();
        for message in batch {
            // Without its metadata a message has no revision: recreate rather than skip it.
            let Ok(info) = message.info() else {
                return Ok(false);
            };
            let revision = info.stream_sequence;
            skipped.extend(tracked.observe(revision));
            let Some(nats_key) = message.subject.strip_prefix(self.backend.read_prefix()) else {
                continue;
            };
            let operation = operation_of(message.headers.as_ref());
            let rollup = operation == Operation::Purge
                || message
                    .headers
                    .as_ref()
                    .is_some_and(|h| h.get(NATS_ROLLUP).is_some());
            let timestamp_ns = info.published.unix_timestamp_nanos().max(0) as u64;
            arrived.push((nats_key, operation, rollup, revision, timestamp_ns, message));
        }
        let mut losses = Vec::new();
        if !skipped.is_empty() {
            let removed = self.removed_among(&skipped).await?;
            if !removed.is_empty() {
                tracked.record_removed(&removed);
                if self.history > 0 {
                    losses.extend(self.trimmed(&tracked, &removed).await?);
                }
                if self.limited {
                    let first = self.stream_state().await?.state.first_sequence;
                    let ranges = clip_below(&removed, first);
                    if !ranges.is_empty() {
                        losses.push(Lost {
                            key: None,
                            ranges,
                            why: format!("the bucket's limits dropped revisions below {first}"),
                        });
                    }
                }
            }
        }
        let mut entries = Vec::with_capacity(arrived.len());
        for (nats_key, operation, rollup, revision, timestamp_ns, message) in arrived {
            // A NATS key in a spelling coordkv never writes names no coordkv key: skipped.
            let Ok(key) = key::from_nats(nats_key) else {
                continue;
            };
            let key: Arc<str> = Arc::from(key);
            if rollup {
                let ranges = tracked.rolled_up(nats_key, revision);
                if !ranges.is_empty() {
                    losses.push(Lost {
                        key: Some(key.clone()),
                        ranges,
                        why: format!("a purge at revision {revision} removed them"),
                    });
                }
            }
            tracked.delivered_on(nats_key, revision);
            entries.push(Entry {
                key,
                value: message.payload.clone(),
                revision,
                operation,
                timestamp_ns,
            });
        }
        losses.sort_by_key(|loss| loss.ranges[0].0);
        let mut losses = losses.into_iter().peekable();
        let mut resync = Vec::new();
        for entry in entries {
            while let Some(loss) = losses.next_if(|loss| loss.ranges[0].0 < entry.revision) {
                resync.extend(hub.lose(loss.key.as_deref(), &loss.ranges, &loss.why));
            }
            let prev = self.prev_of(&hub, &entry).await;
            if entry.revision <= backlog_through {
                hub.dispatch_backlog(&entry, prev.as_ref());
            } else {
                hub.dispatch(&entry, prev.as_ref());
            }
        }
        for loss in losses {
            resync.extend(hub.lose(loss.key.as_deref(), &loss.ranges, &loss.why));
        }
        *gaps = tracked;
        if !resync.is_empty() {
            self.spawn_resync(&hub, resync);
        }
        Ok(true)
    }

    /// Which of the `skipped` revisions are gone from the stream. Most skips are writes
    /// outside the consumer's filter, still stored: a few are looked up one by one (at
    /// once); past [`MAX_LOOKUPS`] they all count as gone, which can only over-report.
    async fn removed_among(&self, skipped: &[(u64, u64)]) -> Result<Vec<(u64, u64)>> {
        let total: u64 = skipped.iter().map(|(low, high)| high - low + 1).sum();
        if total > MAX_LOOKUPS {
            return Ok(skipped.to_vec());
        }
        let revisions: Vec<u64> = skipped.iter().flat_map(|&(low, high)| low..=high).collect();
        let found =
            futures::future::try_join_all(revisions.iter().map(|&r| self.stored(r))).await?;
        let mut removed: Vec<(u64, u64)> = Vec::new();
        for (revision, stored) in revisions.into_iter().zip(found) {
            if stored {
                continue;
            }
            match removed.last_mut() {
                Some((_, high)) if *high + 1 == revision => *high = revision,
                _ => removed.push((revision, revision)),
            }
        }
        Ok(removed)
    }

    /// Whether the stream still holds `revision`.
    async fn stored(&self, revision: u64) -> Result<bool> {
        use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
        let limit = self.backend.request_timeout();
        let stream = self.backend.stream();
        let timed_out = || timeout_error("look up a skipped revision", limit);
        if stream.cached_info().config.allow_direct {
            match tokio::time::timeout(limit, stream.direct_get(revision)).await {
                Err(_) => Err(timed_out()),
                Ok(Ok(_)) => Ok(true),
                Ok(Err(e)) if e.kind() == DirectGetErrorKind::NotFound => Ok(false),
                Ok(Err(e)) => Err(map_error(&e)),
            }
        } else {
            match tokio::time::timeout(limit, stream.get_raw_message(revision)).await {
                Err(_) => Err(timed_out()),
                Ok(Ok(_)) => Ok(true),
                Ok(Err(e)) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                    Ok(false)
                }
                Ok(Err(e)) => Err(map_error(&e)),
            }
        }
    }

    /// Which keys lost `removed` revisions to the history limit: a key in the filters
    /// whose retained history is full and starts after the last revision delivered on it
    /// had revisions trimmed; those of `removed` between the two may have been its events.
    async fn trimmed(&self, tracked: &Gaps, removed: &[(u64, u64)]) -> Result<Vec<Lost>> {
        let limit = self.backend.request_timeout();
        let timed_out = || timeout_error("check the bucket's keys for trimmed history", limit);
        let stream = self.stream();
        let direct = stream.cached_info().config.allow_direct;
        let (filters, _) = self.current_filters();
        let prefix = self.backend.read_prefix();
        let mut lost = Vec::new();
        for filter in filters {
            let mut subjects = tokio::time::timeout(limit, stream.info_with_subjects(&filter))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| map_error(&e))?;
            loop {
                let next = tokio::time::timeout(limit, subjects.try_next())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| map_error(&e))?;
                let Some((subject, count)) = next else { break };
                let Some(nats_key) = subject.strip_prefix(prefix) else {
                    continue;
                };
                let since = tracked.last_delivered_on(nats_key);
                let suspects = gaps::clip_above(removed, since);
                if (count as i64) < self.history || suspects.is_empty() {
                    continue;
                }
                let first = if direct {
                    tokio::time::timeout(limit, stream.direct_get_first_for_subject(&subject))
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(|e| map_error(&e))?
                        .sequence
                } else {
                    let read = stream.get_first_raw_message_by_subject(&subject, 0);
                    tokio::time::timeout(limit, read)
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(|e| map_error(&e))?
                        .sequence
                };
                let ranges = clip_below(&suspects, first);
                let Ok(key) = key::from_nats(nats_key) else {
                    continue;
                };
                if !ranges.is_empty() {
                    lost.push(Lost {
                        key: Some(Arc::from(key)),
                        ranges,
                        why: format!(
                            "the key keeps only its last {} revisions and the oldest is now {first}",
                            self.history
                        ),
                    });
                }
            }
        }
        Ok(lost)
    }

    /// Hands each watcher that may have lost events and asked for `resync` a fresh
    /// snapshot, read like a new watch's (live dispatch goes on meanwhile); one whose
    /// snapshot cannot be read ends with CANCELED(history lost).
    fn spawn_resync(self: &Arc<Self>, hub: &Arc<Hub>, watchers: Vec<Arc<Watcher>>) {
        let feed = self.clone();
        let hub = hub.clone();
        self.backend.runtime().spawn(async move {
            for watcher in watchers {
                let (target, prefix) = watcher.scope();
                let read = feed
                    .catch_up_async(target, prefix, CatchUpMode::Snapshot, false, |catch_up| {
                        hub.finish_resync(&watcher, catch_up)
                    })
                    .await;
                if let Err(e) = read {
                    let why = format!("events may be lost and the resync failed: {e}");
                    hub.end_watcher(&watcher, CancelReason::HistoryLost, why);
                }
            }
        });
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

    /// Reads a watch's catch-up and registers it (`register`) in two steps, so live
    /// dispatch stops only briefly: the bulk (the scope's current values, or its retained
    /// events since the start) is read while the live consumer goes on; then, under the
    /// gate, what was written meanwhile is read and the watcher is registered at the
    /// stream's end. `follow` adds the watch's subject to the live consumer's filters (a
    /// resync's watcher is followed already).
    async fn catch_up_async(
        &self,
        target: &str,
        prefix: bool,
        mode: CatchUpMode,
        follow: bool,
        mut register: impl FnMut(CatchUp),
    ) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        let filter = filter_of(target, prefix);
        let mut reading = Reading::new(mode, target, prefix);
        let mut bulk_end = 0;
        if mode != CatchUpMode::Live {
            bulk_end = self.stream_state().await?.state.last_sequence;
            let policy = match mode {
                CatchUpMode::Replay {
                    with_prev: true, ..
                } => DeliverPolicy::All,
                CatchUpMode::Replay { start, .. } => DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                _ => DeliverPolicy::LastPerSubject,
            };
            self.read_into(&filter, policy, &mut reading).await?;
        }
        let _gate = self.gate.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        let info = self.stream_state().await?;
        let last_sequence = info.state.last_sequence;
        // Writes after the bulk's start: a snapshot rereads from there (a key it read
        // early may have changed before one it read late), a replay from what it has.
        let rest_from = match mode {
            CatchUpMode::Live => None,
            CatchUpMode::Snapshot => Some(bulk_end + 1),
            CatchUpMode::Replay { .. } => Some(bulk_end.max(reading.seen_through) + 1),
        };
        if let Some(from) = rest_from.filter(|from| *from <= last_sequence) {
            let policy = DeliverPolicy::ByStartSequence {
                start_sequence: from,
            };
            self.read_into(&filter, policy, &mut reading).await?;
        }
        let catch_up = reading.finish(last_sequence, &info.config, info.state.first_sequence);
        if lock(&self.subjects).counts.is_empty() {
            // Nobody was watching: the live consumer may start at the stream's end
            // instead of replaying the bucket's whole retained history into the hub.
            if let Some(hub) = self.hub() {
                hub.advance_to(last_sequence);
            }
        }
        if follow {
            self.follow(filter);
        }
        register(catch_up);
        Ok(())
    }

    /// Walks the stream under `filter` with `policy` into `reading`.
    async fn read_into(
        &self,
        filter: &str,
        policy: DeliverPolicy,
        reading: &mut Reading<'_>,
    ) -> Result<()> {
        self.count_temporary_consumer();
        self.backend
            .walk(
                filter,
                policy,
                false,
                &mut |nats_key, operation, value, revision, timestamp_ns| {
                    reading.add(nats_key, operation, value, revision, timestamp_ns)
                },
            )
            .await
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
        self.backend.guarded(
            "watch",
            self.catch_up_async(target, prefix, mode, true, &mut *register),
        )
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
