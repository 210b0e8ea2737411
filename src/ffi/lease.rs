//! Leases in the C ABI: `ckv_lease_grant` hands the caller a `ckv_lease` (its id, TTL and
//! lost state; freeing it does not end the lease), and the other calls name a lease by
//! id, since any store may revoke or inspect any lease.
//!
//! The lost notification is a callback chosen at grant time (`ckv_lease_options.lost`),
//! or `ckv_lease_is_lost` / `ckv_lease_wait_lost` for callers that poll or block.

use super::args::required_out;
use super::args::{error_out, free_handed, hand_over, no_error_out, optional_out, read_or};
use super::entry::ckv_key_list;
use super::store::{ckv_store, with_store};
use super::{ckv_error, ckv_status, guard, guard_value};
use crate::lease::{Lease, LeaseOptions};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// A granted lease: read with `ckv_lease_id`, `ckv_lease_ttl_ms`, `ckv_lease_is_lost`;
/// free with `ckv_lease_free` (which does not end the lease).
pub struct ckv_lease {
    lease: Lease,
    /// Why it was lost, as C reads it; set once, when first asked after the loss.
    reason: std::sync::OnceLock<std::ffi::CString>,
}

/// Called exactly once for a lease granted with it, when the lease is lost (`reason` is a
/// NUL-terminated message, valid for the call): on the keepalive thread, or inside the
/// call that ended it (`ckv_lease_revoke`, `ckv_lease_abandon`, `ckv_close`). Never after
/// `ckv_close` of the store returns (unless that close was made from this callback). It
/// should return promptly.
pub type ckv_lease_lost_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, lease_id: u64, reason: *const c_char)>;

/// How a lease is granted. Fill it with `ckv_lease_options_init` first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ckv_lease_options {
    /// Keep the lease when its store closes (it then expires unless someone keeps it
    /// alive); by default `ckv_close` revokes the leases the store granted.
    pub keep_on_close: bool,
    /// Told once when the lease is lost (optional).
    pub lost: ckv_lease_lost_fn,
    /// Passed to `lost`.
    pub user_data: *mut c_void,
}

/// Fills `options` with the defaults: revoked on close, no lost callback. NULL is a no-op.
///
/// # Safety
/// `options` is NULL or valid for a write of a `ckv_lease_options`.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_options_init(options: *mut ckv_lease_options) {
    // SAFETY: NULL or writable, as this function's `# Safety` requires.
    let options = unsafe { optional_out(options) };
    guard_value((), || {
        options.set(ckv_lease_options {
            keep_on_close: false,
            lost: None,
            user_data: std::ptr::null_mut(),
        })
    })
}

struct LostTarget {
    lost: unsafe extern "C" fn(*mut c_void, u64, *const c_char),
    user_data: *mut c_void,
}

impl LostTarget {
    fn call(&self, id: u64, reason: &str) {
        let reason = std::ffi::CString::new(reason.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the caller's function, called once as `ckv_lease_lost_fn` documents,
        // with its own user data and a message alive for the call.
        unsafe { (self.lost)(self.user_data, id, reason.as_ptr()) }
    }
}

// SAFETY: the caller of `ckv_lease_grant` promises its callback and user data may be used
// from a library thread (documented on `ckv_lease_lost_fn`); it is called at most once.
unsafe impl Send for LostTarget {}

/// Grants a lease of at least `ttl_ms` milliseconds (the granted TTL may be longer: NATS
/// grants whole seconds, and no less than the bucket's marker TTL when it keeps history)
/// and keeps it alive until it is revoked or the store closes. `*lease_out` receives a
/// lease object to free with `ckv_lease_free`. `options` may be NULL.
/// Errors: INVALID_ARGUMENT (ttl_ms 0), UNSUPPORTED (NATS before 2.11.2), UNAVAILABLE.
///
/// # Safety
/// The header's conventions; `options` is NULL or readable, and its `lost` and
/// `user_data` may be used from a library thread until the lease is lost.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_grant(
    store: *mut ckv_store,
    ttl_ms: u64,
    options: *const ckv_lease_options,
    lease_out: *mut *mut ckv_lease,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(store, err_out, |store| {
        // SAFETY: NULL or readable, and `lease_out` writable, as `# Safety` requires.
        let (options, lease_out) = unsafe {
            (
                options.as_ref().copied(),
                required_out(lease_out, "lease_out")?,
            )
        };
        let keep_on_close = options.is_some_and(|o| o.keep_on_close);
        let lost = match options.map(|o| (o.lost, o.user_data)) {
            Some((Some(lost), user_data)) => Some(LostTarget { lost, user_data }),
            _ => None,
        };
        let ttl = Duration::from_millis(ttl_ms);
        let lease = store.lease_grant_with(ttl, LeaseOptions { keep_on_close })?;
        if let Some(target) = lost {
            let (id, watched) = (lease.id(), lease.clone());
            lease.on_lost(move || {
                target.call(id, &watched.lost_reason());
            });
        }
        let reason = std::sync::OnceLock::new();
        lease_out.set(hand_over(ckv_lease { lease, reason }));
        Ok(())
    })
}

/// The lease's id (what `ckv_write_options.lease` and the other lease calls take); 0 for NULL.
///
/// # Safety
/// `lease` is NULL or a live lease object.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_id(lease: *const ckv_lease) -> u64 {
    // SAFETY: NULL or live, as this function's `# Safety` requires.
    unsafe { read_or(lease, 0, |l| l.lease.id()) }
}

/// The TTL granted, in milliseconds; 0 for NULL.
///
/// # Safety
/// `lease` is NULL or a live lease object.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_ttl_ms(lease: *const ckv_lease) -> u64 {
    // SAFETY: NULL or live, as this function's `# Safety` requires.
    unsafe { read_or(lease, 0, |l| l.lease.ttl().as_millis() as u64) }
}

/// Whether the lease is lost: keepalive could not renew it for a whole TTL, it expired,
/// or it was revoked or abandoned, or its store closed. Once lost, always lost. True for NULL.
///
/// # Safety
/// `lease` is NULL or a live lease object.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_is_lost(lease: *const ckv_lease) -> bool {
    // SAFETY: NULL or live, as this function's `# Safety` requires.
    unsafe { read_or(lease, true, |l| l.lease.is_lost()) }
}

/// Why the lease was lost (NUL-terminated, owned by the lease object: valid until
/// `ckv_lease_free`); NULL while it is not lost, and for NULL.
///
/// # Safety
/// `lease` is NULL or a live lease object.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_lost_reason(lease: *const ckv_lease) -> *const c_char {
    // SAFETY: NULL or live, as this function's `# Safety` requires.
    unsafe {
        read_or(lease, std::ptr::null(), |l| {
            if !l.lease.is_lost() {
                return std::ptr::null();
            }
            let reason = l.reason.get_or_init(|| {
                std::ffi::CString::new(l.lease.lost_reason().replace('\0', " ")).unwrap_or_default()
            });
            reason.as_ptr()
        })
    }
}

/// Waits until the lease is lost (CKV_OK) or `timeout_ms` passes (CKV_TIMEOUT; a negative
/// timeout waits for good). INVALID_ARGUMENT for NULL. It may return while the lease's
/// lost callback, if it has one, is still running on another thread.
///
/// # Safety
/// `lease` is NULL or a live lease object, not freed during the call.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_wait_lost(
    lease: *const ckv_lease,
    timeout_ms: i64,
) -> ckv_status {
    guard(no_error_out(), || {
        // SAFETY: NULL or live for the call, as this function's `# Safety` requires.
        let lease = unsafe { lease.as_ref() }
            .ok_or_else(|| crate::error::Error::invalid("lease is NULL"))?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        if lease.lease.wait_lost(timeout) {
            Ok(())
        } else {
            Err(crate::error::Error::new(
                crate::error::ErrorKind::Timeout,
                "the lease is not lost",
            ))
        }
    })
}

/// Frees a lease object. The lease itself goes on (revoke it with `ckv_lease_revoke`).
/// NULL is a no-op.
///
/// # Safety
/// `lease` is NULL or a lease from `ckv_lease_grant`, freed once and not used after.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_free(lease: *mut ckv_lease) {
    // SAFETY: handed over by `ckv_lease_grant` and freed once, as `# Safety` requires.
    unsafe { free_handed(lease) }
}

/// Ends lease `id` and deletes every key attached to it (DELETE events). Any store may
/// revoke any lease. CKV_LEASE_NOT_FOUND when it has already ended.
///
/// # Safety
/// `err_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_revoke(
    store: *mut ckv_store,
    id: u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(store, err_out, |store| store.lease_revoke(id))
}

/// Stops keeping lease `id` alive without revoking it: it and its keys expire after the
/// TTL (CKV_EVENT_EXPIRED), as if this process had died. CKV_LEASE_NOT_FOUND when this
/// store does not keep it alive.
///
/// # Safety
/// `err_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_abandon(
    store: *mut ckv_store,
    id: u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(store, err_out, |store| store.lease_abandon(id))
}

/// Renews lease `id` now (keepalive does this by itself) and stores the time it has left
/// in `*remaining_ms_out` (optional). CKV_LEASE_NOT_FOUND once it has ended.
///
/// # Safety
/// `remaining_ms_out` and `err_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_keep_alive(
    store: *mut ckv_store,
    id: u64,
    remaining_ms_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: NULL or writable, as this function's `# Safety` requires.
    let (remaining_ms_out, err_out) =
        unsafe { (optional_out(remaining_ms_out), error_out(err_out)) };
    with_store(store, err_out, |store| {
        let info = store.lease_keep_alive(id)?;
        remaining_ms_out.set(info.remaining.as_millis() as u64);
        Ok(())
    })
}

/// Lease `id`'s granted TTL and the time it has left, in milliseconds (each optional), and
/// when `keys_out` is not NULL the keys attached to it (free with `ckv_key_list_free`).
/// CKV_LEASE_NOT_FOUND once it has ended.
///
/// # Safety
/// Each `*_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_time_to_live(
    store: *mut ckv_store,
    id: u64,
    ttl_ms_out: *mut u64,
    remaining_ms_out: *mut u64,
    keys_out: *mut *mut ckv_key_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: each NULL or writable, as this function's `# Safety` requires.
    let (ttl_ms_out, remaining_ms_out, keys_out, err_out) = unsafe {
        (
            optional_out(ttl_ms_out),
            optional_out(remaining_ms_out),
            optional_out(keys_out),
            error_out(err_out),
        )
    };
    with_store(store, err_out, |store| {
        let info = store.lease_time_to_live(id, keys_out.is_wanted())?;
        ttl_ms_out.set(info.ttl.as_millis() as u64);
        remaining_ms_out.set(info.remaining.as_millis() as u64);
        keys_out.set_with(|| hand_over(ckv_key_list::new(info.keys)));
        Ok(())
    })
}

/// The live leases of the whole store (every process's): their ids, sorted, into
/// `*ids_out` (free with `ckv_lease_ids_free`; NULL when there are none) and their count
/// into `*count_out`.
///
/// # Safety
/// `ids_out` and `count_out` are writable; `err_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_list(
    store: *mut ckv_store,
    ids_out: *mut *mut u64,
    count_out: *mut usize,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(store, err_out, |store| {
        // SAFETY: writable, as this function's `# Safety` requires.
        let (ids_out, count_out) = unsafe {
            (
                required_out(ids_out, "ids_out")?,
                required_out(count_out, "count_out")?,
            )
        };
        let ids = store.lease_list()?.into_boxed_slice();
        count_out.set(ids.len());
        // An empty list is NULL, never the dangling pointer of an empty allocation.
        ids_out.set(match ids.len() {
            0 => std::ptr::null_mut(),
            _ => Box::into_raw(ids) as *mut u64,
        });
        Ok(())
    })
}

/// Frees the ids of `ckv_lease_list` (`count` as it returned). NULL is a no-op.
///
/// # Safety
/// `ids` is NULL or from `ckv_lease_list` with this `count`, freed once.
#[no_mangle]
pub unsafe extern "C" fn ckv_lease_ids_free(ids: *mut u64, count: usize) {
    if ids.is_null() {
        return;
    }
    guard_value((), || {
        let slice = std::ptr::slice_from_raw_parts_mut(ids, count);
        // SAFETY: the boxed slice `ckv_lease_list` leaked, with its length, freed once.
        drop(unsafe { Box::from_raw(slice) })
    })
}
