//! Telling which skipped revisions were removed, and whose events they may have been.

use super::gaps::{self, clip_below, Gaps};
use super::NatsFeed;
use crate::backend::nats::codec::timestamp_ns;
use crate::backend::nats::errors::{no_answer, within};
use crate::backend::nats::map_error;
use crate::entry::now_ns;
use crate::error::Result;
use crate::key;
use crate::sync::lock;
use async_nats::jetstream::stream::{Config as StreamConfig, DirectGetErrorKind};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Most skipped revisions looked up one by one to tell a filtered-out write from a removed one.
const MAX_LOOKUPS: u64 = 64;

/// Most expiring keys tracked, and looked up after a break; past it every watcher
/// counts as having possibly missed an expiry, which can only over-report.
const MAX_EXPIRING: usize = 10_000;

/// The watched keys whose latest delivered message carries a TTL, by NATS key. After a
/// break, such a key whose subject is now empty expired and had its marker expired too
/// while the feed was away: its watchers may have missed an EXPIRED event.
#[derive(Default)]
pub(super) struct Expiring {
    keys: HashMap<String, Arc<str>>,
    overflowed: bool,
}

impl Expiring {
    pub(super) fn delivered(&mut self, nats_key: &str, key: &Arc<str>, expires: bool) {
        if !expires {
            self.keys.remove(nats_key);
        } else if self.keys.len() < MAX_EXPIRING || self.keys.contains_key(nats_key) {
            self.keys.insert(nats_key.to_string(), key.clone());
        } else {
            self.overflowed = true;
        }
    }
}

/// Revisions that may have held events of `key` (`None`: of any key) and are gone.
pub(super) struct Lost {
    pub(super) key: Option<Arc<str>>,
    pub(super) ranges: Vec<(u64, u64)>,
    pub(super) why: String,
}

impl NatsFeed {
    /// Which of the `skipped` revisions are gone from the stream. Most skips are writes
    /// outside the consumer's filter, still stored: a few are looked up one by one (at
    /// once); past [`MAX_LOOKUPS`] they all count as gone, which can only over-report.
    pub(super) async fn removed_among(&self, skipped: &[(u64, u64)]) -> Result<Vec<(u64, u64)>> {
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
        let timed_out = || no_answer("look up a skipped revision", limit);
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
    pub(super) async fn trimmed(
        &self,
        tracked: &Gaps,
        removed: &[(u64, u64)],
    ) -> Result<Vec<Lost>> {
        let limit = self.backend.request_timeout();
        const CHECKING: &str = "check the bucket's keys for trimmed history";
        let stream = self.stream();
        let direct = stream.cached_info().config.allow_direct;
        let (filters, _) = self.current_filters();
        let prefix = self.backend.read_prefix();
        let mut lost = Vec::new();
        for filter in filters {
            let mut subjects = within(limit, CHECKING, stream.info_with_subjects(&filter)).await?;
            loop {
                let next = within(limit, CHECKING, subjects.try_next()).await?;
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
                    within(
                        limit,
                        CHECKING,
                        stream.direct_get_first_for_subject(&subject),
                    )
                    .await?
                    .sequence
                } else {
                    let read = stream.get_first_raw_message_by_subject(&subject, 0);
                    within(limit, CHECKING, read).await?.sequence
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

    /// Whether a replay from `after + 1` may miss an EXPIRED event: on a bucket with
    /// per-message TTLs the delete marker of an expired key lives only the marker TTL, and
    /// once it is gone nothing is left of it. Every marker after `after` is younger than
    /// the bucket's first message at or after `after`, so the replay is complete when that
    /// one is younger than the marker TTL; when nothing at or after it is left although
    /// something was written, it is not.
    pub(super) async fn markers_may_be_gone(
        &self,
        after: u64,
        config: &StreamConfig,
        last: u64,
    ) -> bool {
        if !config.allow_message_ttl {
            return false;
        }
        if !config.allow_direct {
            return true;
        }
        let marker_ttl = config.subject_delete_marker_ttl.unwrap_or_default();
        let everything = format!("{}>", self.backend.read_prefix());
        let next = self
            .backend
            .stream()
            .direct_get_next_for_subject(everything, Some(after.max(1)));
        match tokio::time::timeout(self.backend.request_timeout(), next).await {
            Ok(Ok(message)) => {
                let written = timestamp_ns(message.time.unix_timestamp_nanos());
                Duration::from_nanos(now_ns().saturating_sub(written)) >= marker_ttl
            }
            Ok(Err(e)) if e.kind() == DirectGetErrorKind::NotFound => last > after,
            _ => true,
        }
    }

    /// After a break: the watched keys that may have missed an EXPIRED event (`None`: every
    /// key), each with why. A key whose latest delivered message expires and whose subject
    /// is now empty expired, and its marker expired too, while the feed was away.
    pub(super) async fn expired_unseen(&self) -> Vec<(Option<Arc<str>>, String)> {
        let (keys, overflowed) = {
            let expiring = lock(&self.expiring);
            let keys: Vec<(String, Arc<str>)> = (expiring.keys.iter())
                .map(|(n, k)| (n.clone(), k.clone()))
                .collect();
            (keys, expiring.overflowed)
        };
        let why = "it expired while the watch feed was away, and its marker expired too";
        if overflowed {
            return vec![(None, format!("a key may have been lost: {why}"))];
        }
        let mut lost = Vec::new();
        for (nats_key, key) in keys {
            let latest = self.backend.latest_for_feed(&nats_key).await;
            match latest {
                Ok(Some(_)) => {}
                Ok(None) => {
                    lock(&self.expiring).keys.remove(&nats_key);
                    lost.push((Some(key.clone()), format!("key {key:?} is gone: {why}")));
                }
                Err(e) => lost.push((
                    Some(key.clone()),
                    format!("key {key:?} cannot be read ({e}); {why}"),
                )),
            }
        }
        lost
    }
}
