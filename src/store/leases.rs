//! A store's lease calls: grant, revoke, keep alive, inspect, list, abandon. Each checks
//! the store is usable and hands over to the store's lessor (`lease`), or for the list
//! to the backend's lease records.

use super::Store;
use crate::error::Result;
use crate::lease::{Lease, LeaseInfo, LeaseOptions};
use std::time::Duration;

impl Store {
    /// Grants a lease of at least `ttl` (a backend may round it up: `Lease::ttl` says what
    /// was granted) and keeps it alive until it is revoked or this store closes.
    pub fn lease_grant(&self, ttl: Duration) -> Result<Lease> {
        self.lease_grant_with(ttl, LeaseOptions::default())
    }

    pub fn lease_grant_with(&self, ttl: Duration, options: LeaseOptions) -> Result<Lease> {
        self.live()?;
        self.lessor.grant(ttl, options)
    }

    /// Ends lease `id` and deletes every key attached to it (DELETE events).
    /// LEASE_NOT_FOUND when it has already ended.
    pub fn lease_revoke(&self, id: u64) -> Result<()> {
        self.live()?;
        self.lessor.revoke(id)
    }

    /// Renews lease `id` (and the keys this store attached to it) now; returns its TTL
    /// and remaining time. Keepalive does this by itself; this is for a caller that
    /// wants to know at once that the lease is still alive.
    pub fn lease_keep_alive(&self, id: u64) -> Result<LeaseInfo> {
        self.live()?;
        let record = self.lessor.keep_alive_once(id)?;
        Ok(LeaseInfo {
            id,
            ttl: record.ttl,
            remaining: record.remaining,
            keys: Vec::new(),
        })
    }

    /// Stops keeping lease `id` alive, without revoking it: it and its keys expire after
    /// the TTL (EXPIRED events), as if this process had died. For handing a lease over
    /// to its expiry on purpose, and for testing what watchers see when a holder dies.
    pub fn lease_abandon(&self, id: u64) -> Result<()> {
        self.live()?;
        self.lessor.abandon(id)
    }

    /// Lease `id`'s TTL and time left, and with `keys` the keys attached to it.
    pub fn lease_time_to_live(&self, id: u64, keys: bool) -> Result<LeaseInfo> {
        self.live()?;
        self.lessor.info(id, keys)
    }

    /// The ids of the live leases of the whole store (every process's), sorted.
    pub fn lease_list(&self) -> Result<Vec<u64>> {
        let records = self.live()?.lease_records()?;
        Ok(records.into_iter().map(|r| r.id).collect())
    }
}
