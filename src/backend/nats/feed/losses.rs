//! Telling which skipped revisions were removed, and whose events they may have been.

use super::gaps::{self, clip_below, Gaps};
use super::NatsFeed;
use crate::backend::nats::errors::{no_answer, within};
use crate::backend::nats::map_error;
use crate::error::Result;
use crate::key;
use futures::TryStreamExt;
use std::sync::Arc;

/// Most skipped revisions looked up one by one to tell a filtered-out write from a removed one.
const MAX_LOOKUPS: u64 = 64;

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
}
