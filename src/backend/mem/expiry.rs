//! Expiry on `mem://`: what ends at a deadline on the monotonic clock (revisions written
//! with a TTL, lease records) and the one thread per store that ends them.
//!
//! Deadlines live in the store's state, under its lock, so a write and its deadline are
//! one step. The thread sleeps until the earliest deadline, or until a write adds one,
//! takes what is due, and ends each revision with an EXPIRED tombstone written like any
//! other write: it gets the next revision and reaches watchers through the write observer,
//! in order. A revision written again before its deadline is no longer its key's latest,
//! so its deadline passes without effect, as on the server, where a newer message of the
//! subject keeps the key alive.
//!
//! The thread is a `Sleeper`: started before the first write that needs it (a refused
//! thread fails that write, never a silent key that does not expire), holding the store
//! only weakly, ended when the store is closed or dropped.

use super::{Expect, MemBackend};
use crate::backend::LeaseRecord;
use crate::entry::{Operation, WriteOptions};
use crate::error::Result;
use crate::sleeper::Sleeper;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Revision(u64),
    Lease(u64),
}

/// The deadlines of one store, kept in its state.
#[derive(Default)]
pub(super) struct Timers {
    due: BTreeSet<(Instant, Due)>,
    /// Live lease records: granted TTL and deadline.
    leases: HashMap<u64, (Duration, Instant)>,
}

impl Timers {
    pub(super) fn expire_revision(&mut self, at: Instant, revision: u64) {
        self.due.insert((at, Due::Revision(revision)));
    }

    /// Makes lease `id` live until `now + ttl`; with `must_exist`, only one that is.
    pub(super) fn renew_lease(
        &mut self,
        id: u64,
        ttl: Duration,
        now: Instant,
        must_exist: bool,
    ) -> bool {
        let live = self.lease(id, now).is_some();
        if must_exist && !live {
            return false;
        }
        self.remove_lease(id);
        let deadline = now + ttl;
        self.leases.insert(id, (ttl, deadline));
        self.due.insert((deadline, Due::Lease(id)));
        true
    }

    pub(super) fn lease(&self, id: u64, now: Instant) -> Option<LeaseRecord> {
        let &(ttl, deadline) = self.leases.get(&id)?;
        (deadline > now).then(|| LeaseRecord {
            id,
            ttl,
            remaining: deadline - now,
        })
    }

    pub(super) fn leases(&self, now: Instant) -> Vec<LeaseRecord> {
        let mut live: Vec<LeaseRecord> = (self.leases.keys())
            .filter_map(|&id| self.lease(id, now))
            .collect();
        live.sort_by_key(|record| record.id);
        live
    }

    pub(super) fn remove_lease(&mut self, id: u64) {
        if let Some((_, deadline)) = self.leases.remove(&id) {
            self.due.remove(&(deadline, Due::Lease(id)));
        }
    }

    /// The revisions due at `now`, oldest deadline first; ended lease records go too.
    fn take_due(&mut self, now: Instant) -> Vec<u64> {
        let mut revisions = Vec::new();
        while let Some(&(at, due)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            match due {
                Due::Revision(revision) => revisions.push(revision),
                Due::Lease(id) => {
                    self.leases.remove(&id);
                }
            }
        }
        revisions
    }

    fn next(&self) -> Option<Instant> {
        self.due.first().map(|&(at, _)| at)
    }
}

/// Starts the expiry thread of `store` if it is not running: before a write that adds a
/// deadline.
pub(super) fn ensure_running(sleeper: &Arc<Sleeper>, store: &Weak<MemBackend>) -> Result<()> {
    let store = store.clone();
    sleeper.ensure_running("coordkv-expiry", "expiry", move || {
        store.upgrade().map(|store| expire_due(&store))
    })
}

/// Ends what is due now; returns the next deadline.
fn expire_due(store: &MemBackend) -> Option<Instant> {
    let Ok(mut state) = store.write_lock() else {
        return None;
    };
    let due = state.timers.take_due(Instant::now());
    let named: Vec<(Arc<str>, u64)> = (due.into_iter())
        .filter_map(|revision| Some((state.log.get(&revision)?.clone(), revision)))
        .collect();
    drop(state);
    for (key, revision) in named {
        // A key written again since is no longer at `revision`: the conflict is the
        // newer write keeping it alive.
        let expect = Expect::Revision(revision);
        let meta = WriteOptions::default();
        let _ = store.write(&key, Bytes::new(), Operation::Expired, expect, &meta);
    }
    store.write_lock().ok()?.timers.next()
}
