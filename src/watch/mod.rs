//! Watches: every write to a key or prefix, delivered to each watcher in revision order.
//!
//! ```text
//!  backend feed ──(entry, prev) in revision order──▶ Hub::dispatch / dispatch_backlog
//!     (mem: write observer under the write lock;       │  registry lookup by the key's
//!      nats: one live consumer per store, nats_feed)   │  path segments: O(depth)
//!     ──(lost revisions of a key or of all)──▶ Hub::lose
//!                                                      ▼
//!                                     per-watcher bounded queue (Mutex + Condvar)
//!                                        │                          │
//!                              Watch::next (poll)      delivery pool (callbacks, a few
//!                                                      library threads, one event at a
//!                                                      time per watcher, in order)
//! ```
//!
//! Design rules, each guarding one of the guarantees in docs/design.md:
//! - The dispatcher never waits for a watcher. A watcher whose queue is full gets
//!   CANCELED(overflow, last_revision) instead of the event, and leaves the registry;
//!   nothing is ever dropped silently, and a new watch from `last_revision + 1` resumes
//!   without a gap.
//! - `last_revision` in CANCELED (and the revision of SYNCED and PROGRESS) always means
//!   "every matching event up to here was queued before this": the watch is complete
//!   through that revision.
//! - Catch-up (snapshot or `start_revision` replay) and registration are one atomic step
//!   with respect to the feed: the feed runs the registration inside its own critical
//!   section ([`Feed::catch_up`]), so there is no seam to lose or duplicate an event in.
//!   The catch-up batch, and the backlog a feed reads after a broken connection, are
//!   queued outside the buffer bound: it counts live events only, so a watcher that keeps
//!   up with live writes never overflows on catch-up.
//! - A feed that finds revisions gone before it read them (trimmed, purged, aged out)
//!   reports them with the key they may have belonged to ([`Hub::lose`]); only watchers
//!   whose scope holds that key and who have not seen past the hole are concerned: they
//!   end with CANCELED(history lost) at the revision before it, or, with
//!   [`WatchOptions::resync`], drop their queue, receive a fresh snapshot and SYNCED
//!   marked [`Event::resync`], and go on live.
//! - Background threads live in one place (`delivery`): a small fixed pool that runs
//!   callbacks and one ticker for PROGRESS. None of them is a tokio worker.
//!
//! # `start_revision` and retained history
//! A replay from `S` is complete only if no event at or after `S` on a key in the watch's
//! scope has been dropped. On `mem://` (and on a JetStream KV bucket) a key keeps at most
//! `history` revisions and a purge drops all earlier ones, so an old revision of a busy
//! key can vanish while the bucket still holds newer ones. The hub does not paper over
//! that: if any key in scope dropped a revision `>= S`, the watch ends at once with
//! CANCELED(history lost, last_revision = S - 1), or, with `resync`, starts with a
//! snapshot instead. The check is per key in scope, so a busy key elsewhere in the store
//! does not make an unrelated replay fail.
//!
//! The NATS feed (one live consumer per store, catch-ups read beside it, losses found from
//! the revisions it skips) is described in `nats_feed` and its `gaps`.

pub(crate) mod delivery;
pub mod feed;
pub mod hub;
pub mod registry;
mod state;
mod watcher;

pub use feed::Feed;
pub use hub::Hub;
pub use watcher::Watch;

use crate::entry::{Entry, Operation};
use std::time::Duration;

/// What kind of event a watcher receives. Discriminants are the `CKV_EVENT_*` codes; a
/// data event's is its operation's `ckv_operation` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum EventKind {
    Put = Operation::Put as i32,
    Delete = Operation::Delete as i32,
    Purge = Operation::Purge as i32,
    Expired = Operation::Expired as i32,
    /// The snapshot is complete: every key that matched at `revision` was delivered.
    Synced = 5,
    /// Every matching event up to `revision` was delivered before this one.
    Progress = 6,
    /// The watch ended; `revision` is the last revision it is complete through.
    Canceled = 7,
}

impl EventKind {
    pub fn of(operation: Operation) -> EventKind {
        match operation {
            Operation::Put => EventKind::Put,
            Operation::Delete => EventKind::Delete,
            Operation::Purge => EventKind::Purge,
            Operation::Expired => EventKind::Expired,
        }
    }

    /// PUT, DELETE, PURGE or EXPIRED: an event that carries an entry.
    pub fn is_data(self) -> bool {
        matches!(
            self,
            EventKind::Put | EventKind::Delete | EventKind::Purge | EventKind::Expired
        )
    }
}

/// Why a watch ended. Discriminants are the `CKV_CANCEL_*` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum CancelReason {
    /// The watch was closed by its owner.
    Closed = 1,
    /// The watcher did not keep up and its buffer filled.
    Overflow = 2,
    /// The backend could not keep serving this watcher (server-side consumer limits).
    WatcherLimit = 3,
    /// `start_revision` is older than the retained history can prove complete.
    HistoryLost = 4,
    /// The store was closed.
    StoreClosed = 5,
}

impl CancelReason {
    pub fn name(self) -> &'static str {
        match self {
            CancelReason::Closed => "closed",
            CancelReason::Overflow => "overflow",
            CancelReason::WatcherLimit => "watcher limit",
            CancelReason::HistoryLost => "history lost",
            CancelReason::StoreClosed => "store closed",
        }
    }
}

/// One event of one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The entry's revision for data events; the bookmark for SYNCED, PROGRESS, CANCELED.
    pub revision: u64,
    /// The written entry (data events) or the snapshot's entry (PUT before SYNCED).
    pub entry: Option<Entry>,
    /// The key's previous live value, when `prev_value` was asked and it is retained.
    pub prev: Option<Entry>,
    /// Set on CANCELED only.
    pub cancel_reason: Option<CancelReason>,
    /// A human explanation on CANCELED; empty otherwise.
    pub message: String,
    /// Part of the watch's catch-up (a snapshot's values and its SYNCED, a replay's
    /// retained events), which the buffer bound does not count.
    pub catch_up: bool,
    /// Part of a resync (a snapshot's values and its SYNCED sent to a `resync` watch in
    /// place of CANCELED(history lost)): the consumer replaces its view instead of merging.
    pub resync: bool,
}

impl Event {
    pub(crate) fn data(entry: Entry, prev: Option<Entry>) -> Event {
        Event {
            kind: EventKind::of(entry.operation),
            revision: entry.revision,
            entry: Some(entry),
            prev,
            cancel_reason: None,
            message: String::new(),
            catch_up: false,
            resync: false,
        }
    }

    pub(crate) fn marker(kind: EventKind, revision: u64) -> Event {
        Event {
            kind,
            revision,
            entry: None,
            prev: None,
            cancel_reason: None,
            message: String::new(),
            catch_up: false,
            resync: false,
        }
    }

    pub(crate) fn canceled(reason: CancelReason, last_revision: u64, message: String) -> Event {
        Event {
            kind: EventKind::Canceled,
            revision: last_revision,
            entry: None,
            prev: None,
            cancel_reason: Some(reason),
            message,
            catch_up: false,
            resync: false,
        }
    }
}

/// How a watch is set up. `Default` is an exact-key watch from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// The target is a prefix (`/nodes/` segment-aligned, `/nod` byte-wise), not a key.
    pub prefix: bool,
    /// Replay every retained event at or after this revision first (0: from now on).
    pub start_revision: u64,
    /// Send the current values first, then SYNCED(rev). Excludes `start_revision`.
    pub snapshot: bool,
    /// Attach the key's previous live value to data events.
    pub prev_value: bool,
    /// Skip DELETE, PURGE and EXPIRED events.
    pub ignore_deletes: bool,
    /// Most live events queued and not yet taken before the watch overflows.
    pub buffer_size: usize,
    /// Send PROGRESS this often; `None` (or zero) for never.
    pub progress_interval: Option<Duration>,
    /// When events in scope are lost (history trimmed before they were read), deliver a
    /// fresh snapshot followed by SYNCED, marked `resync`, instead of ending with
    /// CANCELED(history lost). For caches, which replace their view.
    pub resync: bool,
    /// Also deliver quiet writes (lease keepalives, writes made with `quiet`), which
    /// watchers skip by default.
    pub quiet_writes: bool,
}

/// The buffer size a watch gets unless it asks otherwise.
pub const DEFAULT_BUFFER_SIZE: usize = 1024;

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            prefix: false,
            start_revision: 0,
            snapshot: false,
            prev_value: false,
            ignore_deletes: false,
            buffer_size: DEFAULT_BUFFER_SIZE,
            progress_interval: None,
            resync: false,
            quiet_writes: false,
        }
    }
}
