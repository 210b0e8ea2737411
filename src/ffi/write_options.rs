//! Writes with options: `ckv_write_options` (lease, TTL, quiet) and the `_with` forms of
//! put, create and update, which take the shape of their plain forms in `kv`.
//!
//! Every function here has the header's `# Safety` contract (see `kv`), and its options
//! pointer is NULL (a plain write) or readable.

use super::args::optional_out;
use super::guard_value;
use super::kv::write_value;
use super::store::ckv_store;
use super::{ckv_error, ckv_status};
use crate::entry::WriteOptions;
use crate::store::Store;
use std::ffi::c_char;
use std::time::Duration;

/// How a write is stamped: attached to a lease, expiring, or quiet. Fill it with
/// `ckv_write_options_init` first, so fields added later keep their defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ckv_write_options {
    /// Attach the key to this lease (0: none): it lives as long as the lease and is
    /// deleted when the lease is revoked. Excludes `ttl_ms`.
    pub lease: u64,
    /// Expire the key (CKV_EVENT_EXPIRED) this many milliseconds after the write unless it
    /// is written again first (0: never). A backend may round it up (NATS: whole seconds).
    pub ttl_ms: u64,
    /// Watchers receive the write only if they set `quiet_writes`.
    pub quiet: bool,
}

/// Fills `options` with a plain write: no lease, no TTL, not quiet. NULL is a no-op.
///
/// # Safety
/// `options` is NULL or valid for a write of a `ckv_write_options`.
#[no_mangle]
pub unsafe extern "C" fn ckv_write_options_init(options: *mut ckv_write_options) {
    // SAFETY: NULL or writable, as this function's `# Safety` requires.
    let options = unsafe { optional_out(options) };
    guard_value((), || {
        options.set(ckv_write_options::from(WriteOptions::default()))
    })
}

impl From<WriteOptions> for ckv_write_options {
    fn from(o: WriteOptions) -> Self {
        ckv_write_options {
            lease: o.lease,
            ttl_ms: o.ttl.map_or(0, |t| t.as_millis() as u64),
            quiet: o.quiet,
        }
    }
}

/// The core's options for the C struct; a plain write for NULL.
///
/// # Safety
/// `options` is NULL or points to a readable `ckv_write_options`.
unsafe fn core_write_options(options: *const ckv_write_options) -> WriteOptions {
    // SAFETY: NULL or readable, by this function's contract.
    let options = unsafe { options.as_ref() }.copied();
    options.map_or_else(WriteOptions::default, |o| WriteOptions {
        lease: o.lease,
        ttl: (o.ttl_ms > 0).then(|| Duration::from_millis(o.ttl_ms)),
        quiet: o.quiet,
    })
}

/// `ckv_put` with write options (NULL: a plain put). A lease that has ended is
/// CKV_LEASE_NOT_FOUND; a lease and a TTL together are INVALID_ARGUMENT; a TTL or lease on
/// a server without TTLs (NATS before 2.11.2) is UNSUPPORTED.
///
/// # Safety
/// The header's conventions; `options` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ckv_put_with(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    options: *const ckv_write_options,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let (key, value) = ((key, key_len), (value, value_len));
    // SAFETY: NULL or readable, as this function's `# Safety` requires.
    let options = unsafe { core_write_options(options) };
    let put = |store: &Store, key: &str, value: &[u8]| store.put_with(key, value, &options);
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, put) }
}

/// `ckv_create` with write options (see `ckv_put_with`).
///
/// # Safety
/// The header's conventions; `options` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ckv_create_with(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    options: *const ckv_write_options,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let (key, value) = ((key, key_len), (value, value_len));
    // SAFETY: NULL or readable, as this function's `# Safety` requires.
    let options = unsafe { core_write_options(options) };
    let create = |store: &Store, key: &str, value: &[u8]| store.create_with(key, value, &options);
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, create) }
}

/// `ckv_update` with write options (see `ckv_put_with`).
///
/// # Safety
/// The header's conventions; `options` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ckv_update_with(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    revision: u64,
    options: *const ckv_write_options,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let (key, value) = ((key, key_len), (value, value_len));
    // SAFETY: NULL or readable, as this function's `# Safety` requires.
    let options = unsafe { core_write_options(options) };
    let update = |s: &Store, key: &str, value: &[u8]| s.update_with(key, value, revision, &options);
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, update) }
}
