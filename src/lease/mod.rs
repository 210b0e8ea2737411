//! Leases: keys that live as long as their holder, and the lessor that keeps them alive.
//!
//! A lease is a record in the backend with a TTL (`Backend::lease_renew`), and a key
//! attached to it is a key written with the lease's TTL. Nothing on the server ties the
//! two together: the lessor of the store that attached a key rewrites it quietly, at
//! about a third of the TTL, for as long as the lease record lives. So when the process
//! holding a lease dies, the record and its keys stop being renewed and expire on their
//! own, each into an EXPIRED event, on `mem://` and on NATS alike; a clean `revoke`
//! deletes them instead (DELETE events). Who died and who left is told apart by the
//! operation a membership watcher sees.
//!
//! Flow: `Store::lease_grant` writes the record and hands the lease to this store's
//! [`Lessor`]; a write with `WriteOptions::lease` checks the record, writes the key with
//! the lease's TTL and tells the lessor the key and its revision. The keepalive thread
//! (`keepalive`, the only thread here) renews each lease's record, then rewrites its keys
//! at the revision it last wrote, so a key someone else wrote meanwhile is left alone and
//! dropped from the lease's keys. When renewal has failed for a whole TTL, or the record
//! is gone, the lease is lost: its holder is told through [`Lease`] and its keys are left
//! to expire.

mod keepalive;

use crate::backend::{Backend, LeaseRecord};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::jitter;
use crate::sleeper::Sleeper;
use crate::sync::lock;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a lease is granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Keep the lease (and its keys) when the store closes: it then expires on its own
    /// unless another process keeps it alive. By default closing a store revokes the
    /// leases it granted.
    pub keep_on_close: bool,
}

/// What `Store::lease_time_to_live` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: u64,
    /// The TTL the lease was granted.
    pub ttl: Duration,
    /// How long until it expires unless renewed.
    pub remaining: Duration,
    /// The keys attached to it, sorted (only when asked for).
    pub keys: Vec<String>,
}

/// A key this store attached to a lease, as last written.
struct Attached {
    revision: u64,
    value: Bytes,
}

/// One lease this store keeps alive.
pub(crate) struct Held {
    id: u64,
    ttl: Duration,
    /// Granted by this store: its record is renewed here. A lease granted elsewhere is
    /// held only for the keys attached here, for as long as its record lives.
    owned: bool,
    keep_on_close: bool,
    keys: Mutex<HashMap<Arc<str>, Attached>>,
    /// When the last renewal that reached the backend started.
    renewed: Mutex<Instant>,
    /// When the keepalive thread renews it next.
    due: Mutex<Instant>,
    lost: Signal,
}

/// Set once, observed by polling, waiting or a callback.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Default)]
struct SignalState {
    set: bool,
    why: String,
    callbacks: Vec<Box<dyn FnOnce() + Send>>,
}

impl Signal {
    fn set(&self, why: String) {
        let callbacks = {
            let mut state = lock(&self.state);
            if state.set {
                return;
            }
            state.set = true;
            state.why = why;
            std::mem::take(&mut state.callbacks)
        };
        self.changed.notify_all();
        for callback in callbacks {
            callback();
        }
    }

    fn is_set(&self) -> bool {
        lock(&self.state).set
    }
}

/// A lease granted by a store, with its id, TTL and lost state. Dropping it changes
/// nothing: the lease lives until revoked, its store closes, or it is lost.
#[derive(Clone)]
pub struct Lease {
    held: Arc<Held>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id())
            .field("ttl", &self.ttl())
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl Lease {
    pub fn id(&self) -> u64 {
        self.held.id
    }

    /// The TTL granted: at least the one asked for.
    pub fn ttl(&self) -> Duration {
        self.held.ttl
    }

    /// Whether the lease is lost: keepalive could not renew it for a whole TTL, or it
    /// ended (expired, or revoked by someone). Once lost, always lost.
    pub fn is_lost(&self) -> bool {
        self.held.lost.is_set()
    }

    /// Why the lease was lost (empty while it is not).
    pub fn lost_reason(&self) -> String {
        lock(&self.held.lost.state).why.clone()
    }

    /// Waits until the lease is lost or `timeout` passes (`None`: no limit); returns
    /// whether it is lost.
    pub fn wait_lost(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = lock(&self.held.lost.state);
        while !state.set {
            let Some(deadline) = deadline else {
                state = (self.held.lost.changed.wait(state)).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = (self.held.lost.changed.wait_timeout(state, left))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.set
    }

    /// Calls `callback` once when the lease is lost (at once if it already is), on the
    /// library's keepalive thread or the calling one.
    pub fn on_lost(&self, callback: impl FnOnce() + Send + 'static) {
        let mut state = lock(&self.held.lost.state);
        if state.set {
            drop(state);
            callback();
        } else {
            state.callbacks.push(Box::new(callback));
        }
    }
}

/// The leases one store keeps alive, and its keepalive thread.
pub(crate) struct Lessor {
    backend: Arc<dyn Backend>,
    held: Mutex<HashMap<u64, Arc<Held>>>,
    /// The keepalive thread (`keepalive`).
    thread: Arc<Sleeper>,
}

impl Lessor {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Arc<Lessor> {
        Arc::new(Lessor {
            backend,
            held: Mutex::new(HashMap::new()),
            thread: Arc::default(),
        })
    }

    /// Grants a lease of at least `ttl` and starts keeping it alive.
    pub(crate) fn grant(self: &Arc<Self>, ttl: Duration, options: LeaseOptions) -> Result<Lease> {
        if ttl.is_zero() {
            return Err(Error::invalid("a lease TTL must be greater than zero"));
        }
        let ttl = self.backend.granted_ttl(ttl)?;
        keepalive::ensure_running(self)?;
        let id = new_lease_id();
        self.backend.lease_renew(id, ttl, false)?;
        let held = self.hold(id, ttl, true, options.keep_on_close);
        Ok(Lease { held })
    }

    fn hold(&self, id: u64, ttl: Duration, owned: bool, keep_on_close: bool) -> Arc<Held> {
        let now = Instant::now();
        let mut held = lock(&self.held);
        let held = held.entry(id).or_insert_with(|| {
            Arc::new(Held {
                id,
                ttl,
                owned,
                keep_on_close,
                keys: Mutex::new(HashMap::new()),
                renewed: Mutex::new(now),
                due: Mutex::new(now + next_renewal(ttl)),
                lost: Signal::default(),
            })
        });
        let held = held.clone();
        self.thread.wake();
        held
    }

    /// The TTL a write attached to lease `id` carries; LEASE_NOT_FOUND once it ended. The
    /// keepalive thread is started first: this store will keep the key alive, also for a
    /// lease granted elsewhere.
    pub(crate) fn ttl_for_write(self: &Arc<Self>, id: u64) -> Result<Duration> {
        keepalive::ensure_running(self)?;
        match self.backend.lease_record(id)? {
            Some(record) => Ok(record.ttl),
            None => Err(ended(id)),
        }
    }

    /// A write attached `key` (at `revision`, with `value`) to lease `id`: keep it alive.
    pub(crate) fn attached(&self, id: u64, ttl: Duration, key: &str, revision: u64, value: Bytes) {
        let held = self.hold(id, ttl, false, true);
        if held.lost.is_set() {
            return;
        }
        let attached = Attached { revision, value };
        lock(&held.keys).insert(Arc::from(key), attached);
    }

    /// Renews lease `id` once, now (its keys included); LEASE_NOT_FOUND once it ended.
    pub(crate) fn keep_alive_once(&self, id: u64) -> Result<LeaseRecord> {
        let held = lock(&self.held).get(&id).cloned();
        match held {
            Some(held) => keepalive::renew(self, &held)?,
            None => {
                let record = self.backend.lease_record(id)?.ok_or_else(|| ended(id))?;
                if !self.backend.lease_renew(id, record.ttl, true)? {
                    return Err(ended(id));
                }
            }
        }
        self.backend.lease_record(id)?.ok_or_else(|| ended(id))
    }

    /// Stops keeping lease `id` alive without revoking it: its record and keys expire
    /// after the TTL, exactly as if this process had died. The holder is told it is lost.
    pub(crate) fn abandon(&self, id: u64) -> Result<()> {
        let held = lock(&self.held).remove(&id).ok_or_else(|| ended(id))?;
        held.lost.set(format!("lease {id} was abandoned"));
        Ok(())
    }

    /// Revokes lease `id`: its record goes (of concurrent revokes one wins; the others
    /// get LEASE_NOT_FOUND), then every key attached to it is deleted. A failure leaves
    /// the lease held as it was.
    pub(crate) fn revoke(&self, id: u64) -> Result<()> {
        if !self.backend.lease_remove(id)? {
            return Err(ended(id));
        }
        let held = lock(&self.held).remove(&id);
        if let Some(held) = &held {
            held.lost.set(format!("lease {id} was revoked"));
        }
        for entry in self.attached_entries(id)? {
            match self.backend.delete(&entry.key, entry.revision) {
                Err(e) if e.kind() == ErrorKind::Conflict => {} // rewritten since: not ours
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// The live entries attached to lease `id`, in key order.
    pub(crate) fn attached_entries(&self, id: u64) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        self.backend.scan("/", false, &mut |entry| {
            if entry.lease == id {
                found.push(entry);
            }
            true
        })?;
        Ok(found)
    }

    pub(crate) fn info(&self, id: u64, with_keys: bool) -> Result<LeaseInfo> {
        let record = self.backend.lease_record(id)?.ok_or_else(|| ended(id))?;
        let keys = if with_keys {
            let entries = self.attached_entries(id)?;
            entries.into_iter().map(|e| e.key.to_string()).collect()
        } else {
            Vec::new()
        };
        Ok(LeaseInfo {
            id,
            ttl: record.ttl,
            remaining: record.remaining,
            keys,
        })
    }

    /// The store is closing: revoke the leases it granted (unless kept) and stop.
    pub(crate) fn close(&self) {
        self.thread.stop();
        let held: Vec<Arc<Held>> = lock(&self.held).drain().map(|(_, h)| h).collect();
        for held in held {
            if held.owned && !held.keep_on_close && !held.lost.is_set() {
                // Best effort: a lease that cannot be revoked expires on its own.
                let _ = self.revoke(held.id);
            }
            held.lost.set("its store was closed".to_string());
        }
    }
}

/// LEASE_NOT_FOUND for lease `id`.
pub(crate) fn ended(id: u64) -> Error {
    Error::new(
        ErrorKind::LeaseNotFound,
        format!("lease {id} has ended (expired or revoked) or never existed"),
    )
}

/// When a lease is renewed next: a third of its TTL, less up to a tenth of the TTL of
/// jitter, so that holders granted together do not renew in lockstep.
fn next_renewal(ttl: Duration) -> Duration {
    (ttl / 3).saturating_sub(jitter(ttl / 10))
}

/// A random lease id below 2^63 (so it is also a positive int64), never 0.
fn new_lease_id() -> u64 {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let nanos = crate::entry::now_ns();
    (state.hash_one((nanos, std::thread::current().id())) >> 1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_come_at_about_a_third_of_the_ttl() {
        let ttl = Duration::from_secs(3);
        for _ in 0..100 {
            let next = next_renewal(ttl);
            assert!(next <= Duration::from_secs(1) && next >= Duration::from_millis(700));
        }
    }

    #[test]
    fn lease_ids_are_positive_int64_values() {
        for _ in 0..100 {
            let id = new_lease_id();
            assert!(id > 0 && id < 1 << 63);
        }
    }
}
