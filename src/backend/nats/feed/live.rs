//! The live consumer: created from `dispatched + 1` for the current filter set, recreated
//! when that set changes, the consumer breaks or the client reconnects; what it delivers
//! is checked for losses and dispatched in batches under the gate.

use super::gaps::{clip_below, Gaps};
use super::losses::Lost;
use super::NatsFeed;
use crate::backend::nats::codec::{expected_last_sequence, operation_of, timestamp_ns, Record};
use crate::entry::Operation;
use crate::error::Result;
use crate::key;
use crate::sync::lock;
use crate::watch::CancelReason;
use async_nats::header::{NATS_MESSAGE_TTL, NATS_ROLLUP};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures::{FutureExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long the server keeps the live consumer of a process that vanished.
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);
/// Pull requests wait this long; heartbeats inside them reveal a dead connection.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
const PULL_HEARTBEAT: Duration = Duration::from_secs(3);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Most messages dispatched under the gate at once: what had already arrived.
const MAX_BATCH: usize = 256;

/// Waits `retry` (doubling it for next time), or less when the client reconnects.
async fn pause(retry: &mut Duration, connects: &mut watch::Receiver<u64>) {
    tokio::select! {
        _ = tokio::time::sleep(*retry) => {}
        _ = connects.changed() => {}
    }
    *retry = (*retry * 2).min(RETRY_MAX);
}

impl NatsFeed {
    /// The live loop: (re)create the consumer from `dispatched + 1` whenever the filter
    /// set changes, the consumer breaks or the client reconnects, and dispatch what it
    /// delivers in batches under the gate.
    pub(super) async fn run(self: Arc<Self>) {
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
                        let lost = self.expired_unseen().await;
                        let missed = [(start, last_sequence.max(start))];
                        let mut resync = Vec::new();
                        for (key, why) in lost {
                            resync.extend(hub.lose(key.as_deref(), &missed, &why));
                        }
                        if !resync.is_empty() {
                            self.spawn_resync(&hub, resync);
                        }
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
    /// lost acknowledged writes); `Some(why)` if so. (Expiries missed meanwhile are
    /// `expired_unseen`'s.) Also returns the stream's last
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
            let timestamp_ns = timestamp_ns(info.published.unix_timestamp_nanos());
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
                // A roll-up written at an expected revision (a TTL write by coordkv at the
                // revision it read, a keepalive) removed only what preceded that one.
                let expected = message.headers.as_ref().and_then(expected_last_sequence);
                let before = expected.map_or(revision, |e| (e + 1).min(revision));
                let ranges = tracked.rolled_up(nats_key, before);
                if !ranges.is_empty() {
                    losses.push(Lost {
                        key: Some(key.clone()),
                        ranges,
                        why: format!("a purge at revision {revision} removed them"),
                    });
                }
            }
            tracked.delivered_on(nats_key, revision);
            let expires = operation == Operation::Put
                && (message.headers.as_ref()).is_some_and(|h| h.get(NATS_MESSAGE_TTL).is_some());
            lock(&self.expiring).delivered(nats_key, &key, expires);
            let record = Record {
                nats_key,
                operation,
                headers: message.headers.as_ref(),
                value: message.payload.clone(),
                revision,
                timestamp_ns,
            };
            entries.push(record.into_entry(key));
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
}
