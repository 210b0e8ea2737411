//! The KV message codec: what a bucket message says as a coordkv entry — its operation,
//! lease and quietness (from its headers), its key (from its subject), its time.
//!
//! coordkv's own headers are `Coordkv-Lease` (the lease id, decimal) and `Coordkv-Quiet`
//! (present on a quiet write). Other clients' messages carry neither: a plain write.

use crate::entry::{Entry, Operation};
use crate::key;
use async_nats::header::{self, HeaderMap};
use bytes::Bytes;
use std::sync::Arc;

/// One message of the bucket as a walk reads it, before its key is decoded.
pub(crate) struct Record<'a> {
    /// The subject less the bucket's prefix: a NATS key, possibly not a coordkv spelling.
    pub nats_key: &'a str,
    pub operation: Operation,
    pub headers: Option<&'a HeaderMap>,
    pub value: Bytes,
    pub revision: u64,
    pub timestamp_ns: u64,
}

impl Record<'_> {
    /// The coordkv key this message is on; `None` for a NATS key in a spelling coordkv
    /// never writes (another client's), which names no key.
    pub fn key(&self) -> Option<String> {
        key::from_nats(self.nats_key).ok()
    }

    pub fn into_entry(self, key: Arc<str>) -> Entry {
        Entry {
            key,
            value: self.value,
            revision: self.revision,
            operation: self.operation,
            timestamp_ns: self.timestamp_ns,
            lease: lease_of(self.headers),
            quiet: self.headers.is_some_and(|h| h.get(COORDKV_QUIET).is_some()),
        }
    }
}

/// A message time (nanoseconds since the epoch, as the client gives it) as an entry's
/// timestamp: 0 for a time before the epoch.
pub(crate) fn timestamp_ns(unix_nanos: i128) -> u64 {
    unix_nanos.max(0) as u64
}

pub(super) const KV_OPERATION: &str = "KV-Operation";
pub(super) const COORDKV_LEASE: &str = "Coordkv-Lease";
pub(super) const COORDKV_QUIET: &str = "Coordkv-Quiet";

/// The revision a conditional write expected its key to be at, from its headers.
pub(crate) fn expected_last_sequence(headers: &HeaderMap) -> Option<u64> {
    let expected = headers.get(header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE)?;
    expected.as_str().parse().ok()
}

/// The lease a message was written under (0: none, or a header that is not a lease id).
fn lease_of(headers: Option<&HeaderMap>) -> u64 {
    headers
        .and_then(|h| h.get(COORDKV_LEASE))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn operation_of(headers: Option<&HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    if let Some(op) = headers.get(KV_OPERATION) {
        return match op.as_str() {
            "DEL" => Operation::Delete,
            "PURGE" => Operation::Purge,
            _ => Operation::Put,
        };
    }
    match headers.get(header::NATS_MARKER_REASON).map(|r| r.as_str()) {
        Some("MaxAge") => Operation::Expired,
        Some("Purge") => Operation::Purge,
        Some("Remove") => Operation::Delete,
        _ => Operation::Put,
    }
}
