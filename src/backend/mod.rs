//! The backend abstraction: the few primitive operations a storage engine must offer.
//!
//! A backend receives keys and prefixes already validated by `Store` and values already
//! size-checked, and answers with entries and store-wide revisions. Everything built from
//! these primitives (`get`'s tombstone rule, `delete_prefix`, `read_modify_write`'s retry
//! loop) lives once in `Store`, so `mem://` and `nats://` cannot drift apart.
//!
//! Calls are blocking: a backend that does I/O drives it on the library's runtime with
//! `runtime::block_on`, so a C caller's thread waits and no runtime worker ever does.
//!
//! Each backend also owns the feed that turns its writes into watch events (`mem::feed`:
//! the write observer; `nats::feed`: one live consumer per store), and [`open`] is the one
//! place that picks a backend for a config, wires its feed to a new hub and starts the
//! feed's background work.

use crate::config::{BackendKind, Config};
use crate::entry::{Entry, WriteOptions};
use crate::error::Result;
use crate::watch::Hub;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

pub mod mem;
pub mod nats;

/// What a feature needs of a backend beyond the KV primitives every backend has. Features
/// ask [`Backend::require`] first, so an old server answers UNSUPPORTED naming the version
/// needed, from this one place, instead of failing in some other way later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Per-message TTL and subject delete markers: leases, TTL keys, EXPIRED events.
    Ttl,
    /// A write guarded by another subject's last sequence, as one server-side step.
    FencedWrite,
    /// Several writes applied all or none: transactions with more than one write.
    AtomicBatch,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::Ttl,
        Capability::FencedWrite,
        Capability::AtomicBatch,
    ];

    /// What the capability is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Ttl => "per-key TTL (leases, TTL keys, EXPIRED events)",
            Capability::FencedWrite => "a fenced write in one server-side step",
            Capability::AtomicBatch => "an atomic batch of several writes",
        }
    }

    /// The oldest nats-server release that has it.
    pub fn min_nats_server(self) -> (u64, u64, u64) {
        match self {
            Capability::Ttl => (2, 11, 2),
            Capability::FencedWrite => (2, 11, 0),
            Capability::AtomicBatch => (2, 12, 0),
        }
    }
}

/// A storage engine with JetStream-KV semantics.
pub trait Backend: Send + Sync {
    /// `Ok` when this backend can do `capability`; UNSUPPORTED saying what it needs
    /// otherwise. The embedded backend has no server to be too old.
    fn require(&self, _capability: Capability) -> Result<()> {
        Ok(())
    }

    /// Unconditional write; returns the new revision. A write with a TTL keeps only
    /// itself in the key's history (a roll-up), so its expiry can never bring an older
    /// revision back; it expires into an EXPIRED tombstone unless written again first.
    fn put(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64>;
    /// Write only if the key has no live value (none, or a DELETE/PURGE/EXPIRED tombstone);
    /// otherwise `Conflict` carrying the current revision.
    fn create(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64>;
    /// Write only if the key's latest revision (tombstones included) is `revision`;
    /// `revision == 0` means the key has never been written (or was purged away).
    fn update(&self, key: &str, value: Bytes, revision: u64, meta: &WriteOptions) -> Result<u64>;
    /// Write a DELETE tombstone; `revision != 0` makes it conditional like `update`.
    fn delete(&self, key: &str, revision: u64) -> Result<u64>;
    /// Drop the key's history, leaving a PURGE marker; returns the marker's revision.
    fn purge(&self, key: &str) -> Result<u64>;
    /// The key's latest entry, tombstones included; `None` if nothing is retained.
    fn latest(&self, key: &str) -> Result<Option<Entry>>;
    /// Visits live entries under `prefix` in key order until `visit` returns false.
    /// With `values == false` a backend may leave `Entry::value` empty.
    fn scan(&self, prefix: &str, values: bool, visit: &mut dyn FnMut(Entry) -> bool) -> Result<()>;
    /// Retained entries of one key, oldest first (empty if none).
    fn history(&self, key: &str) -> Result<Vec<Entry>>;
    /// The store's latest revision (0 for an empty store).
    fn last_revision(&self) -> Result<u64>;

    /// The TTL this backend grants when `asked` for one (never less; see
    /// `docs/design.md` for why a backend rounds up); UNSUPPORTED without TTL support.
    fn granted_ttl(&self, asked: Duration) -> Result<Duration>;
    /// Writes the record of lease `id` so that it lives `ttl` from now. With `must_exist`
    /// only an existing record is renewed: `Ok(false)` when it has ended.
    fn lease_renew(&self, id: u64, ttl: Duration, must_exist: bool) -> Result<bool>;
    /// The record of lease `id`, `None` once it has expired or was removed.
    fn lease_record(&self, id: u64) -> Result<Option<LeaseRecord>>;
    /// Every live lease record, by id.
    fn lease_records(&self) -> Result<Vec<LeaseRecord>>;
    /// Removes the record of lease `id` (revoked): `Ok(false)` when it was already gone.
    /// Of concurrent removals exactly one answers `Ok(true)`.
    fn lease_remove(&self, id: u64) -> Result<bool>;
    /// Releases connections and background work; later calls may fail with `Closed`.
    fn close(&self);
}

/// A lease as its backend keeps it: granted TTL and how long it has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRecord {
    pub id: u64,
    pub ttl: Duration,
    pub remaining: Duration,
}

/// What a store needs of its backend: the KV operations, and the hub its feed drives.
pub struct Opened {
    pub backend: Arc<dyn Backend>,
    pub hub: Arc<Hub>,
}

/// Opens the backend `config` names and attaches its feed to a new hub.
pub fn open(config: &Config) -> Result<Opened> {
    match config.backend_kind()? {
        BackendKind::Mem => {
            let kv = mem::MemBackend::new(config.history);
            let feed = mem::feed::MemFeed::new(kv.clone());
            let hub = Hub::new(feed.clone(), config.max_watchers);
            feed.attach(&hub);
            Ok(Opened { backend: kv, hub })
        }
        BackendKind::Nats => {
            let kv = Arc::new(nats::NatsBackend::open(config)?);
            let feed = nats::feed::NatsFeed::new(kv.clone());
            let hub = Hub::new(feed.clone(), config.max_watchers);
            feed.attach(&hub);
            Ok(Opened { backend: kv, hub })
        }
    }
}
