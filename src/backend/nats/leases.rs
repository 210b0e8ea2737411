//! TTL keys and lease records on NATS (nats-server 2.11.2 or newer).
//!
//! A TTL write carries `Nats-TTL` (whole seconds) and rolls its key's history up to itself:
//! when the server expires the message it is then the subject's last one, so the server
//! replaces it with a delete marker (`Nats-Marker-Reason: MaxAge`), which the feed reads
//! as EXPIRED and which itself expires after the bucket's marker TTL. Without the roll-up
//! an older revision written without a TTL would come back to life.
//!
//! The bucket needs `allow_msg_ttl` and `subject_delete_marker_ttl`. Both are switched on,
//! in place, by the first TTL or lease call (not at open: a store that never uses them
//! leaves the bucket as it found it, and so usable by older servers of a mixed cluster).
//! The server raises a TTL below the marker TTL to it when the bucket keeps more than one
//! revision per key, so `granted_ttl` grants that much.
//!
//! A lease record is a message on `coordkv/lease.<id>`, a NATS key no coordkv key spells
//! (`/` never appears in one), so scans and watches skip it. Its value is the granted TTL
//! in milliseconds; it is renewed like a TTL key and removed by a purge that expires too.

use super::codec::KV_OPERATION;
use super::errors::map_error;
use super::NatsBackend;
use crate::backend::{Backend, Capability, LeaseRecord};
use crate::entry::{now_ns, Entry};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use crate::sync::lock;
use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::consumer::DeliverPolicy;
use bytes::Bytes;
use std::time::Duration;

/// The NATS key of lease records, before the id.
const LEASE_RECORDS: &str = "coordkv/lease.";

/// A whole number of seconds, rounded up: NATS TTLs are whole seconds.
fn whole_seconds(ttl: Duration) -> u64 {
    ttl.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

impl NatsBackend {
    /// The bucket's marker TTL, switching TTLs on for the bucket first if they are off.
    pub(super) fn marker_ttl(&self) -> Result<Duration> {
        self.require(Capability::Ttl)?;
        let mut in_effect = lock(&self.marker_ttl_in_effect);
        if let Some(ttl) = *in_effect {
            return Ok(ttl);
        }
        // A denied update comes back as the call's error or from the permission watchdog:
        // either way the caller learns what to run.
        let ttl = (self.call("enable TTLs on the bucket", self.enable_ttl()))
            .map_err(|e| self.cannot_enable_ttl(&e))?;
        *in_effect = Some(ttl);
        Ok(ttl)
    }

    async fn enable_ttl(&self) -> Result<Duration> {
        let mut stream = self.bucket.stream.clone();
        let info = stream.info().await.map_err(|e| map_error(&e))?;
        let current = info.config.clone();
        if let (true, Some(ttl)) = (current.allow_message_ttl, current.subject_delete_marker_ttl) {
            return Ok(ttl);
        }
        let mut wanted = current;
        wanted.allow_message_ttl = true;
        wanted.subject_delete_marker_ttl = Some(self.marker_ttl_wanted);
        wanted.allow_rollup = true;
        wanted.deny_purge = false;
        let updated = self.js.update_stream(&wanted).await;
        updated
            .map(|_| self.marker_ttl_wanted)
            .map_err(|e| map_error(&e))
    }

    /// `cause` with what an operator can do about a bucket without per-message TTLs.
    fn cannot_enable_ttl(&self, cause: &Error) -> Error {
        Error::new(
            cause.kind(),
            format!(
                "bucket {:?} has no per-message TTLs and coordkv could not switch them on \
                 ({}); have an operator run `nats stream edit {} --allow-msg-ttl \
                 --subject-delete-marker-ttl {}s`, or allow this user to update the stream",
                self.bucket.name,
                cause.message(),
                self.bucket.stream_name,
                self.marker_ttl_wanted.as_secs()
            ),
        )
    }

    /// The TTL granted for `asked`: whole seconds, and at least the marker TTL when the
    /// bucket keeps more than one revision per key (the server raises it so).
    pub(super) fn ttl_granted(&self, asked: Duration) -> Result<Duration> {
        let marker = self.marker_ttl()?;
        let mut seconds = whole_seconds(asked);
        if self.history != 1 {
            seconds = seconds.max(whole_seconds(marker));
        }
        Ok(Duration::from_secs(seconds))
    }

    /// The headers of a write that expires after `ttl`.
    pub(super) fn ttl_headers(&self, ttl: Duration, headers: &mut HeaderMap) -> Result<()> {
        self.marker_ttl()?;
        headers.insert(
            header::NATS_MESSAGE_TTL,
            whole_seconds(ttl).to_string().as_str(),
        );
        headers.insert(header::NATS_ROLLUP, "sub");
        Ok(())
    }

    pub(super) fn renew_record(&self, id: u64, ttl: Duration, must_exist: bool) -> Result<bool> {
        let nats_key = format!("{LEASE_RECORDS}{id}");
        let renewed = RetryPolicy::immediate(4).retry(|| {
            let mut headers = HeaderMap::new();
            self.ttl_headers(ttl, &mut headers)?;
            if must_exist {
                let Some(current) = self.record_entry(&nats_key)? else {
                    return Ok(Some(false));
                };
                headers.insert(
                    header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                    header::HeaderValue::from(current.revision),
                );
            }
            let value = Bytes::from(ttl.as_millis().to_string());
            match self.call(
                "renew a lease",
                self.publish(&nats_key, value, Some(headers)),
            ) {
                Ok(_) => Ok(Some(true)),
                Err(e) if e.kind() == ErrorKind::Conflict => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(renewed.unwrap_or(false))
    }

    /// The live record message on `nats_key`, if any (a purge or marker is none).
    fn record_entry(&self, nats_key: &str) -> Result<Option<Entry>> {
        let latest = self.call("read a lease", self.latest_async(nats_key, nats_key))?;
        Ok(latest.filter(Entry::is_live))
    }

    pub(super) fn record(&self, id: u64) -> Result<Option<LeaseRecord>> {
        self.marker_ttl()?;
        let entry = self.record_entry(&format!("{LEASE_RECORDS}{id}"))?;
        Ok(entry.and_then(|e| record_of(id, &e)))
    }

    pub(super) fn records(&self) -> Result<Vec<LeaseRecord>> {
        self.marker_ttl()?;
        let mut found = Vec::new();
        let filter = format!("{LEASE_RECORDS}*");
        self.call_walk(
            "list leases",
            &filter,
            DeliverPolicy::LastPerSubject,
            false,
            &mut |r| {
                let id = r
                    .nats_key
                    .strip_prefix(LEASE_RECORDS)
                    .and_then(|id| id.parse().ok());
                if let (Some(id), true) = (id, r.operation.is_live()) {
                    let entry = r.into_entry("".into());
                    found.extend(record_of(id, &entry));
                }
            },
        )?;
        found.sort_by_key(|record| record.id);
        Ok(found)
    }

    /// Removes lease `id`'s record: a purge, conditional on the record read (so of
    /// concurrent removals one wins), that expires after the marker TTL too.
    pub(super) fn remove_record(&self, id: u64) -> Result<bool> {
        let marker = self.marker_ttl()?;
        let nats_key = format!("{LEASE_RECORDS}{id}");
        let Some(record) = self.record_entry(&nats_key)? else {
            return Ok(false);
        };
        let mut headers = HeaderMap::new();
        self.ttl_headers(marker, &mut headers)?;
        headers.insert(KV_OPERATION, "PURGE");
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            header::HeaderValue::from(record.revision),
        );
        let purge = self.publish(&nats_key, Bytes::new(), Some(headers));
        match self.call("revoke a lease", purge) {
            Ok(_) => Ok(true),
            // Renewed meanwhile: try again on what is there now; removed: someone won.
            Err(e) if e.kind() == ErrorKind::Conflict => self.remove_record(id),
            Err(e) => Err(e),
        }
    }
}

/// A record message as a lease: its TTL from the value, what is left of it from the
/// server's timestamp and this machine's clock. `None` once that has run out.
fn record_of(id: u64, entry: &Entry) -> Option<LeaseRecord> {
    let ttl_ms: u64 = std::str::from_utf8(&entry.value).ok()?.parse().ok()?;
    let ttl = Duration::from_millis(ttl_ms);
    let age = Duration::from_nanos(now_ns().saturating_sub(entry.timestamp_ns));
    let remaining = ttl.checked_sub(age).filter(|r| !r.is_zero())?;
    Some(LeaseRecord { id, ttl, remaining })
}
