//! Store handles and the key-value operations.
//!
//! Each function: look the handle up, turn `(ptr, len)` buffers into slices and text,
//! call `Store`, write the `_out` parameters only on success.
//!
//! Every function here has the same `# Safety` contract, the header's conventions:
//! buffers are NULL (with length 0) or readable for their length during the call, and
//! each `*_out` pointer is NULL or valid for a write. Handles are not pointers: any value
//! is checked (see `handles`).

use super::args::{
    bytes_arg, cstr_arg, error_out, hand_over, optional_out, required_out, text_arg,
};
use super::entry::{ckv_entry, ckv_entry_list, ckv_key_list};
use super::handles::{Closable, HandleTable, Kind};
use super::{ckv_error, ckv_status, guard, guard_value};
use crate::error::Result;
use crate::store::Store;
use std::ffi::c_char;
use std::sync::Arc;

/// An open store. Opaque; safe to use from many threads at once.
pub struct ckv_store {
    _opaque: [u8; 0],
}

static STORES: HandleTable<Store> = HandleTable::new("store", Kind::Store);

impl Closable for Store {
    fn close(&self) {
        Store::close(self)
    }
    fn when_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        Store::when_quiet(self, action)
    }
}

pub(crate) fn store_of(handle: *mut ckv_store) -> Result<Arc<Store>> {
    STORES.lookup(handle)
}

/// Open store handles, closing ones included (for tests: every handle accounted for).
pub(crate) fn open_stores() -> usize {
    STORES.live()
}

/// Opens a store by URL: `"mem://"` (in-process) or `"nats://host:port[,host:port...]"`.
/// On success `*store_out` receives a handle to close with `ckv_close`.
/// Errors: INVALID_ARGUMENT (NULL, bad URL), UNAVAILABLE, UNAUTHORIZED, ...
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_open(
    url: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        // SAFETY: `url` is a C string and `store_out` writable, as `# Safety` requires.
        let (url, store_out) =
            unsafe { (cstr_arg(url, "url")?, required_out(store_out, "store_out")?) };
        STORES.publish(Store::open(url)?, store_out)
    })
}

/// Opens a store from a JSON config (NUL-terminated UTF-8); see the README for the
/// fields. Unknown fields and wrong types are INVALID_ARGUMENT.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_open_config(
    json: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        // SAFETY: `json` is a C string and `store_out` writable, as `# Safety` requires.
        let (json, store_out) = unsafe {
            (
                cstr_arg(json, "json config")?,
                required_out(store_out, "store_out")?,
            )
        };
        STORES.publish(Store::open_json(json)?, store_out)
    })
}

/// Closes a store and releases its resources. NULL, a handle already closed and a value
/// that is not a store handle are no-ops. Calls racing on other threads finish or fail
/// with CKV_CLOSED; any later use of the handle fails with CKV_CLOSED and never touches
/// freed memory. Every watch of the store ends with CKV_CANCEL_STORE_CLOSED.
///
/// Callbacks: on a thread that is not a delivery thread, when this returns no callback of
/// the store's watches is running and none is ever called again — also when the store
/// was already closed by a callback. Called from inside a callback it returns at once:
/// no callback is started after it, and callbacks already running finish on their own.
#[no_mangle]
pub extern "C" fn ckv_close(store: *mut ckv_store) {
    guard_value((), || STORES.close(store))
}

/// Writes `value` under `key` unconditionally; the new revision goes to `*revision_out`
/// (optional, may be NULL). `key` is `key_len` bytes of UTF-8, not NUL-terminated.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_put(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: buffers readable, `revision_out` NULL or writable, as `# Safety` requires.
        let (key, value, revision_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                bytes_arg(value, value_len, "value")?,
                optional_out(revision_out),
            )
        };
        revision_out.set(store.put(key, value)?);
        Ok(())
    })
}

/// Reads the latest live entry of `key` into `*entry_out` (free with `ckv_entry_free`).
/// CKV_NOT_FOUND when the key was never written, or was deleted, purged or expired.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_get(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    entry_out: *mut *mut ckv_entry,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `key` readable and `entry_out` writable, as `# Safety` requires.
        let (key, entry_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                required_out(entry_out, "entry_out")?,
            )
        };
        entry_out.set(hand_over(ckv_entry::new(store.get(key)?)));
        Ok(())
    })
}

/// Writes only if `key` has no live value (a delete tombstone counts as none);
/// otherwise CKV_CONFLICT, with the current revision in the error.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_create(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: buffers readable, `revision_out` NULL or writable, as `# Safety` requires.
        let (key, value, revision_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                bytes_arg(value, value_len, "value")?,
                optional_out(revision_out),
            )
        };
        revision_out.set(store.create(key, value)?);
        Ok(())
    })
}

/// Writes only if the latest revision of `key` is `revision` (a delete tombstone's revision
/// counts, and so does a purge marker's; `revision == 0` writes only a key that has never
/// been written); otherwise CKV_CONFLICT, with the current revision in the error
/// (`ckv_error_current_revision`).
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_update(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    revision: u64,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: buffers readable, `revision_out` NULL or writable, as `# Safety` requires.
        let (key, value, revision_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                bytes_arg(value, value_len, "value")?,
                optional_out(revision_out),
            )
        };
        revision_out.set(store.update(key, value, revision)?);
        Ok(())
    })
}

/// Writes a delete tombstone for `key` (also when it has no live value). With
/// `revision != 0` only if the key's latest revision is `revision` (else CKV_CONFLICT).
/// The tombstone's revision goes to `*revision_out` (optional).
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_delete(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    revision: u64,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `key` readable and `revision_out` NULL or writable, as `# Safety` requires.
        let (key, revision_out) =
            unsafe { (text_arg(key, key_len, "key")?, optional_out(revision_out)) };
        revision_out.set(store.delete(key, revision)?);
        Ok(())
    })
}

/// Drops the history of `key`, leaving a purge marker whose revision goes to
/// `*revision_out` (optional).
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_purge(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `key` readable and `revision_out` NULL or writable, as `# Safety` requires.
        let (key, revision_out) =
            unsafe { (text_arg(key, key_len, "key")?, optional_out(revision_out)) };
        revision_out.set(store.purge(key)?);
        Ok(())
    })
}

/// Deletes every live key under `prefix` (which starts with '/'); how many goes to
/// `*count_out` (optional). Each key is deleted at the revision it was listed with, so a
/// key rewritten meanwhile keeps its newer value and is not counted.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_delete_prefix(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    count_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `prefix` readable and `count_out` NULL or writable, as `# Safety` requires.
        let (prefix, count_out) = unsafe {
            (
                text_arg(prefix, prefix_len, "prefix")?,
                optional_out(count_out),
            )
        };
        count_out.set(store.delete_prefix(prefix)?);
        Ok(())
    })
}

/// The live keys under `prefix`, sorted, into `*keys_out` (free with `ckv_key_list_free`).
/// A prefix ending in '/' is segment-aligned; any other matches byte-wise.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_keys(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    keys_out: *mut *mut ckv_key_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `prefix` readable and `keys_out` writable, as `# Safety` requires.
        let (prefix, keys_out) = unsafe {
            (
                text_arg(prefix, prefix_len, "prefix")?,
                required_out(keys_out, "keys_out")?,
            )
        };
        keys_out.set(hand_over(ckv_key_list::new(store.keys(prefix)?)));
        Ok(())
    })
}

/// The live entries under `prefix`, sorted by key, into `*entries_out`
/// (free with `ckv_entry_list_free`).
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_list(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    entries_out: *mut *mut ckv_entry_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `prefix` readable and `entries_out` writable, as `# Safety` requires.
        let (prefix, entries_out) = unsafe {
            (
                text_arg(prefix, prefix_len, "prefix")?,
                required_out(entries_out, "entries_out")?,
            )
        };
        entries_out.set(hand_over(ckv_entry_list::new(store.list(prefix)?)));
        Ok(())
    })
}

/// The retained revisions of `key`, oldest first, tombstones included, into
/// `*entries_out` (free with `ckv_entry_list_free`). CKV_NOT_FOUND if none is retained.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_history(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    entries_out: *mut *mut ckv_entry_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `key` readable and `entries_out` writable, as `# Safety` requires.
        let (key, entries_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                required_out(entries_out, "entries_out")?,
            )
        };
        entries_out.set(hand_over(ckv_entry_list::new(store.history(key)?)));
        Ok(())
    })
}

/// The store's latest revision (0 when nothing was ever written) into `*revision_out`.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_last_revision(
    store: *mut ckv_store,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `revision_out` is writable, as `# Safety` requires.
        let revision_out = unsafe { required_out(revision_out, "revision_out")? };
        revision_out.set(store.last_revision()?);
        Ok(())
    })
}
