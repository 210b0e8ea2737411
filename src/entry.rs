//! What the store holds and what watches carry: one revisioned entry per write.
//!
//! An entry is immutable once written. The key is an `Arc<str>` and the value a `Bytes`
//! so that fanning one write out to many watchers and history readers copies pointers,
//! not payloads.

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a write did to its key. Discriminants are the `ckv_operation` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Operation {
    Put = 1,
    Delete = 2,
    Purge = 3,
    Expired = 4,
}

impl Operation {
    /// Whether the key has a live value after this operation.
    pub fn is_live(self) -> bool {
        self == Operation::Put
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::Put => "PUT",
            Operation::Delete => "DELETE",
            Operation::Purge => "PURGE",
            Operation::Expired => "EXPIRED",
        }
    }
}

/// One write to one key at one store-wide revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Arc<str>,
    pub value: Bytes,
    pub revision: u64,
    pub operation: Operation,
    /// Nanoseconds since the Unix epoch, as recorded by the backend.
    pub timestamp_ns: u64,
    /// The lease the write was attached to (0: none).
    pub lease: u64,
    /// Written quietly: watchers receive it only when they asked for quiet writes.
    pub quiet: bool,
}

impl Entry {
    pub fn is_live(&self) -> bool {
        self.operation.is_live()
    }
}

/// What a write carries besides its key and value. `Default` is a plain write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Attach the key to this lease (0: none): it lives as long as the lease, and is
    /// deleted when the lease is revoked. Excludes `ttl`.
    pub lease: u64,
    /// The key expires (an EXPIRED tombstone) this long after the write, unless written
    /// again first. A backend may round it up (see `Store::lease_grant`). By the time a
    /// backend sees a leased write, the store has set this to the lease's TTL.
    pub ttl: Option<Duration>,
    /// Watchers receive the write only when they asked for quiet writes.
    pub quiet: bool,
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
