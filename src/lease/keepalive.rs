//! The keepalive thread of one store's lessor, and one renewal of one lease.
//!
//! The thread (a `Sleeper`) sleeps until the earliest lease is due (or a grant wakes it),
//! renews what is due, and goes back to sleep. It is a plain thread, not a runtime task,
//! because a renewal makes blocking backend calls like any caller. It is started by the
//! first grant or leased write (a refused thread fails that call), holds the lessor
//! weakly, and ends when the store closes.
//!
//! A renewal that fails is retried soon; one that has failed for a whole TTL loses the
//! lease, since the backend may have expired it by then. A renewal that finds the record
//! gone loses it at once.

use super::{ended, next_renewal, Attached, Held, Lessor};
use crate::entry::WriteOptions;
use crate::error::{ErrorKind, Result};
use crate::sync::lock;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait before a failed renewal is tried again.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Starts the keepalive thread of `lessor` if it is not running.
pub(super) fn ensure_running(lessor: &Arc<Lessor>) -> Result<()> {
    let weak = Arc::downgrade(lessor);
    lessor
        .thread
        .ensure_running("coordkv-keepalive", "keepalive", move || {
            weak.upgrade().map(|lessor| renew_due(&lessor))
        })
}

/// Renews every lease that is due; returns when the next one is.
fn renew_due(lessor: &Lessor) -> Option<Instant> {
    let now = Instant::now();
    let held: Vec<Arc<Held>> = lock(&lessor.held).values().cloned().collect();
    for lease in held.iter().filter(|h| *lock(&h.due) <= now) {
        let _ = renew(lessor, lease);
    }
    let held = lock(&lessor.held);
    held.values().map(|h| *lock(&h.due)).min()
}

/// Renews `held` now: its record (when this store granted it), then its keys. Loses the
/// lease when it ended or could not be renewed for a whole TTL.
pub(super) fn renew(lessor: &Lessor, held: &Held) -> Result<()> {
    let started = Instant::now();
    let outcome = renew_record_and_keys(lessor, held);
    // A renewal that lands more than a TTL after the last one came too late: the backend
    // may have expired the keys meanwhile. (A renewal sent while the server was down is
    // buffered by the client and may succeed once it is back, after the TTL has passed.)
    let late = Instant::now().saturating_duration_since(*lock(&held.renewed));
    match outcome {
        Ok(true) if late >= held.ttl => {
            let why = format!(
                "lease {} was renewed only {} ms after its previous renewal (its TTL is {} ms)",
                held.id,
                late.as_millis(),
                held.ttl.as_millis()
            );
            lose(lessor, held, why);
            Err(ended(held.id))
        }
        Ok(true) => {
            *lock(&held.renewed) = started;
            *lock(&held.due) = started + next_renewal(held.ttl);
            Ok(())
        }
        Ok(false) => {
            lose(
                lessor,
                held,
                format!("lease {} ended (expired or revoked)", held.id),
            );
            Err(ended(held.id))
        }
        Err(e) => {
            let unrenewed = started.saturating_duration_since(*lock(&held.renewed));
            if unrenewed >= held.ttl {
                let why = format!(
                    "lease {} could not be renewed for {} ms (its TTL): {e}",
                    held.id,
                    unrenewed.as_millis()
                );
                lose(lessor, held, why);
            } else {
                *lock(&held.due) = Instant::now() + (held.ttl / 10).min(RETRY_MAX);
            }
            Err(e)
        }
    }
}

fn lose(lessor: &Lessor, held: &Held, why: String) {
    lock(&lessor.held).remove(&held.id);
    held.lost.set(why);
}

/// `Ok(false)` when the lease record is gone.
fn renew_record_and_keys(lessor: &Lessor, held: &Held) -> Result<bool> {
    let backend = &lessor.backend;
    let alive = if held.owned {
        backend.lease_renew(held.id, held.ttl, true)?
    } else {
        backend.lease_record(held.id)?.is_some()
    };
    if !alive {
        return Ok(false);
    }
    let keys: Vec<(Arc<str>, u64, bytes::Bytes)> = (lock(&held.keys).iter())
        .map(|(key, a)| (key.clone(), a.revision, a.value.clone()))
        .collect();
    let options = WriteOptions {
        lease: held.id,
        ttl: Some(held.ttl),
        quiet: true,
    };
    for (key, revision, value) in keys {
        let now_at = match backend.update(&key, value.clone(), revision, &options) {
            Ok(written) => Some(Attached {
                revision: written,
                value,
            }),
            // Written by someone since: still ours if it is live and on this lease (that
            // write renewed it too), otherwise no longer this lease's to keep.
            Err(e) if e.kind() == ErrorKind::Conflict => backend
                .latest(&key)?
                .filter(|entry| entry.is_live() && entry.lease == held.id)
                .map(|entry| Attached {
                    revision: entry.revision,
                    value: entry.value,
                }),
            Err(e) => return Err(e),
        };
        let mut keys = lock(&held.keys);
        match now_at {
            Some(attached) => keys.insert(key, attached),
            None => keys.remove(&key),
        };
    }
    Ok(true)
}
