//! Which revisions a feed skipped, and which of those could have been events it lost.
//!
//! A JetStream consumer delivers a bucket's messages in stream order, but only those still
//! stored when it reaches them: a message removed first (its key's history limit trimmed
//! it, a purge rolled it up, the stream's age or size limit dropped it) is skipped without
//! a trace. A skipped revision is most often just a write outside the consumer's filter,
//! which is still stored: the feed asks the server which skipped revisions are gone (a
//! few at once, by sequence; past a bound all of them count as gone, which can only
//! over-report) and keeps those here, so that only a removal can end a watcher:
//!
//! - **History limit.** A trimmed message's key holds a full history that starts after it;
//!   the feed checks that when it finds a removed revision.
//! - **Roll-ups (purges).** A roll-up on a key removes what precedes it there, including
//!   messages the consumer had not reached, so a roll-up delivered on a key concerns every
//!   removed revision since the last one delivered on that key (up to the revision it was
//!   written to expect, when it says: coordkv's TTL writes and keepalives roll up at the
//!   revision they read, so they explain nothing the feed had not delivered). Those are the revisions
//!   kept here (a bounded list: past its size the oldest ranges merge into one that covers
//!   them, a superset, so a check stays conservative, never blind).
//! - **Age and size limits** remove the stream's oldest messages: a removed revision below
//!   the stream's first retained one may have been anything.
//!
//! The consumer's per-message pending count is no certificate here: nats-server keeps it
//! as a running counter whose increments arrive after the removals they should precede,
//! so under a burst it reports fewer pending messages than are stored.
//!
//! Ranges are inclusive `(low, high)` pairs in increasing order.

use std::collections::HashMap;

/// At most this many removed ranges are kept.
const MAX_REMOVED: usize = 1024;
/// At most this many keys' last delivered revisions are kept; past it they are all
/// forgotten, which only widens later checks.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Default)]
pub struct Gaps {
    /// The last revision delivered.
    last: u64,
    /// Revisions found removed (or not checked) after they were skipped.
    removed: Vec<(u64, u64)>,
    /// The last revision delivered per NATS key.
    last_on: HashMap<String, u64>,
}

impl Gaps {
    /// A new consumer starts after `last`; removed revisions seen so far stay (a roll-up
    /// still to come may concern one of them).
    pub fn restart_after(&mut self, last: u64) {
        self.last = last;
    }

    /// Records the delivery of `revision` on `nats_key`; returns the revisions skipped
    /// right before it.
    pub fn observe(&mut self, revision: u64) -> Option<(u64, u64)> {
        let skipped = (revision > self.last + 1).then(|| (self.last + 1, revision - 1));
        self.last = self.last.max(revision);
        skipped
    }

    /// Notes a delivered revision on `nats_key` (after any roll-up check of it).
    pub fn delivered_on(&mut self, nats_key: &str, revision: u64) {
        match self.last_on.get_mut(nats_key) {
            Some(last) => *last = revision,
            None => {
                if self.last_on.len() >= MAX_KEYS {
                    self.last_on.clear();
                }
                self.last_on.insert(nats_key.to_string(), revision);
            }
        }
    }

    /// The last revision delivered on `nats_key`, or 0 when none is known.
    pub fn last_delivered_on(&self, nats_key: &str) -> u64 {
        self.last_on.get(nats_key).copied().unwrap_or(0)
    }

    /// Keeps skipped revisions that are gone (or were not checked).
    pub fn record_removed(&mut self, ranges: &[(u64, u64)]) {
        self.removed.extend_from_slice(ranges);
        while self.removed.len() > MAX_REMOVED {
            let (low, _) = self.removed.remove(0);
            self.removed[0].0 = low;
        }
    }

    /// For a roll-up on `nats_key` at `revision`: the removed revisions it may explain,
    /// those since the last delivery on that key.
    pub fn rolled_up(&self, nats_key: &str, revision: u64) -> Vec<(u64, u64)> {
        let since = self.last_delivered_on(nats_key);
        clip_below(&clip_above(&self.removed, since), revision)
    }
}

/// The parts of `ranges` below `limit`.
pub fn clip_below(ranges: &[(u64, u64)], limit: u64) -> Vec<(u64, u64)> {
    ranges
        .iter()
        .filter(|(low, _)| *low < limit)
        .map(|&(low, high)| (low, high.min(limit - 1)))
        .collect()
}

/// The parts of `ranges` above `limit`.
pub fn clip_above(ranges: &[(u64, u64)], limit: u64) -> Vec<(u64, u64)> {
    ranges
        .iter()
        .filter(|(_, high)| *high > limit)
        .map(|&(low, high)| (low.max(limit + 1), high))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_what_lies_between_deliveries() {
        let mut gaps = Gaps::default();
        gaps.restart_after(10);
        assert_eq!(gaps.observe(11), None);
        assert_eq!(gaps.observe(15), Some((12, 14)));
        gaps.restart_after(12);
        assert_eq!(gaps.observe(13), None);
    }

    #[test]
    fn a_rollup_concerns_removed_revisions_since_its_key_was_last_delivered() {
        let mut gaps = Gaps::default();
        gaps.record_removed(&[(2, 3), (8, 9), (20, 25)]);
        gaps.delivered_on("k", 8);
        assert_eq!(gaps.rolled_up("k", 22), vec![(9, 9), (20, 21)]);
        // A key never delivered: everything removed before the roll-up.
        assert_eq!(gaps.rolled_up("other", 5), vec![(2, 3)]);
    }

    #[test]
    fn the_removed_list_stays_bounded_and_conservative() {
        let mut gaps = Gaps::default();
        for i in 0..(MAX_REMOVED as u64 + 10) {
            gaps.record_removed(&[(10 * i + 1, 10 * i + 2)]);
        }
        assert_eq!(gaps.removed.len(), MAX_REMOVED);
        assert_eq!(gaps.rolled_up("k", 100_000).first(), Some(&(1, 102)));
    }

    #[test]
    fn clipping() {
        assert_eq!(clip_below(&[(1, 4), (6, 9)], 8), vec![(1, 4), (6, 7)]);
        assert_eq!(clip_below(&[(1, 4), (6, 9)], 6), vec![(1, 4)]);
        assert_eq!(clip_above(&[(1, 4), (6, 9)], 3), vec![(4, 4), (6, 9)]);
    }
}
