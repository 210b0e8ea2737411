//! The `mem://` feed: the backend's write observer is the dispatcher's input, and its
//! `snapshot`/`replay` hooks run a registration under the backend's read lock.
//!
//! Writes hold the backend's write lock while they call the observer, so a registration
//! inside the read lock sees the store exactly at `through` and every later write reaches
//! the new watcher through `Hub::dispatch`: the seam has no gap and no duplicate.

use crate::backend::mem::MemBackend;
use crate::error::Result;
use crate::watch::feed::{CatchUp, CatchUpMode, Feed, Register, Scope};
use crate::watch::Hub;
use std::sync::{Arc, Weak};

pub struct MemFeed {
    backend: Arc<MemBackend>,
}

impl MemFeed {
    pub fn new(backend: Arc<MemBackend>) -> Arc<MemFeed> {
        Arc::new(MemFeed { backend })
    }

    /// Routes every committed write of the backend to `hub`. The observer holds the hub
    /// weakly: the hub owns the feed, and the feed's backend must not own the hub back.
    pub fn attach(&self, hub: &Arc<Hub>) {
        let hub: Weak<Hub> = Arc::downgrade(hub);
        self.backend.set_observer(Some(Arc::new(move |entry, prev| {
            if let Some(hub) = hub.upgrade() {
                hub.dispatch(entry, prev);
            }
        })));
    }
}

impl Feed for MemFeed {
    fn catch_up(&self, scope: Scope, mode: CatchUpMode, register: Register) -> Result<()> {
        let Scope { target, prefix } = scope;
        let wanted = |key: &str| scope.contains(key);
        match mode {
            CatchUpMode::Live => self.backend.at_last_revision(|through| {
                register(CatchUp {
                    through,
                    ..CatchUp::default()
                })
            }),
            CatchUpMode::Snapshot => {
                // The backend's snapshot takes a byte-wise prefix; an exact key's range
                // also holds longer keys, filtered out here.
                self.backend.snapshot(target, |through, live| {
                    let entries = live
                        .into_iter()
                        .filter(|e| wanted(&e.key))
                        .map(|e| (e, None))
                        .collect();
                    register(CatchUp {
                        entries,
                        through,
                        history_lost: false,
                    })
                })
            }
            CatchUpMode::Replay { start, .. } => {
                self.backend.replay(start, target, prefix, |entries, end| {
                    register(CatchUp {
                        entries,
                        through: end.last_revision,
                        history_lost: end.dropped_through >= start,
                    })
                })
            }
        }
    }
}
