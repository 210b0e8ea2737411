//! Catch-ups: a new watch's snapshot or replay (and a resync's snapshot) read beside the
//! live consumer, then completed and registered under the gate; and previous values.

use super::{filter_of, is_limited, NatsFeed};
use crate::backend::nats::codec::Record;
use crate::entry::{Entry, Operation};
use crate::error::{Error, Result};
use crate::key;
use crate::sync::lock;
use crate::watch::feed::{CatchUp, CatchUpMode, Scope};
use crate::watch::hub::{Hub, Watcher};
use crate::watch::CancelReason;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::Config as StreamConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

    fn add(&mut self, record: Record<'_>) {
        let (revision, operation) = (record.revision, record.operation);
        if revision <= self.seen_through && !matches!(self.mode, CatchUpMode::Snapshot) {
            return;
        }
        self.seen_through = self.seen_through.max(revision);
        let Some(key) = record.key() else {
            return;
        };
        if !(Scope {
            target: self.target,
            prefix: self.prefix,
        })
        .contains(&key)
        {
            return;
        }
        let entry = record.into_entry(Arc::from(key));
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

impl NatsFeed {
    /// Hands each watcher that may have lost events and asked for `resync` a fresh
    /// snapshot, read like a new watch's (live dispatch goes on meanwhile); one whose
    /// snapshot cannot be read ends with CANCELED(history lost).
    pub(super) fn spawn_resync(self: &Arc<Self>, hub: &Arc<Hub>, watchers: Vec<Arc<Watcher>>) {
        let feed = self.clone();
        let hub = hub.clone();
        self.backend.runtime().spawn(async move {
            for watcher in watchers {
                let Scope { target, prefix } = watcher.scope();
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
    pub(super) async fn prev_of(&self, hub: &Hub, entry: &Entry) -> Option<Entry> {
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
            .walk(&nats_key, DeliverPolicy::All, false, &mut |record| {
                if record.revision < revision {
                    last = Some(record.into_entry(Arc::from(key_text)));
                }
            })
            .await;
        last.unwrap_or(Entry {
            key: Arc::from(key_text),
            value: Default::default(),
            revision: 0,
            operation: Operation::Delete,
            timestamp_ns: 0,
            lease: 0,
            quiet: false,
        })
    }

    /// Reads a watch's catch-up and registers it (`register`) in two steps, so live
    /// dispatch stops only briefly: the bulk (the scope's current values, or its retained
    /// events since the start) is read while the live consumer goes on; then, under the
    /// gate, what was written meanwhile is read and the watcher is registered at the
    /// stream's end. `follow` adds the watch's subject to the live consumer's filters (a
    /// resync's watcher is followed already).
    pub(super) async fn catch_up_async(
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
        let ttl_dropped = match mode {
            CatchUpMode::Replay { start, .. } => {
                let after = start.saturating_sub(1);
                self.markers_may_be_gone(after, &info.config, last_sequence)
                    .await
            }
            _ => false,
        };
        let mut catch_up = reading.finish(last_sequence, &info.config, info.state.first_sequence);
        catch_up.history_lost |= ttl_dropped;
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
        self.backend
            .walk(filter, policy, false, &mut |record| reading.add(record))
            .await
    }
}
