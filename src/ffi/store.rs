//! Store handles and the key-value operations.
//!
//! Each function: look the handle up, turn `(ptr, len)` buffers into slices and text,
//! call `Store`, write the `_out` parameters only on success.

use super::entry::{ckv_entry, ckv_entry_list, ckv_key_list};
use super::handles::{HandleTable, Kind};
use super::{
    bytes_arg, ckv_error, ckv_status, cstr_arg, guard, kind_of, out_arg, text_arg, write_opt,
    CKV_OK,
};
use crate::error::{Error, ErrorKind, Result};
use crate::store::Store;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// An open store. Opaque; safe to use from many threads at once.
pub struct ckv_store {
    _opaque: [u8; 0],
}

static STORES: HandleTable<Store> = HandleTable::new("store", Kind::Store);

pub(crate) fn store_of(handle: *mut ckv_store) -> Result<Arc<Store>> {
    STORES.get(handle as usize)
}

fn publish(store: Store, store_out: *mut *mut ckv_store) -> Result<()> {
    let handle = STORES.insert(Arc::new(store))?;
    // SAFETY: checked non-NULL by the caller of `publish`.
    unsafe { *store_out = handle as *mut ckv_store };
    Ok(())
}

/// Open store handles, closing ones included (for tests: every handle accounted for).
pub(crate) fn open_stores() -> usize {
    STORES.live()
}

/// Opens a store by URL: `"mem://"` (in-process) or `"nats://host:port[,host:port...]"`.
/// On success `*store_out` receives a handle to close with `ckv_close`.
/// Errors: INVALID_ARGUMENT (NULL, bad URL), UNAVAILABLE, UNAUTHORIZED, ...
#[no_mangle]
pub unsafe extern "C" fn ckv_open(
    url: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let url = unsafe { cstr_arg(url, "url")? };
        out_arg(store_out, "store_out")?;
        publish(Store::open(url)?, store_out)
    })
}

/// Opens a store from a JSON config (NUL-terminated UTF-8); see the README for the
/// fields. Unknown fields and wrong types are INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn ckv_open_config(
    json: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let json = unsafe { cstr_arg(json, "json config")? };
        out_arg(store_out, "store_out")?;
        publish(Store::open_json(json)?, store_out)
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
pub unsafe extern "C" fn ckv_close(store: *mut ckv_store) {
    super::guard_value((), || {
        let handle = store as usize;
        if let Some(store) = STORES.begin_close(handle) {
            store.close();
            // The slot stays (closing) until no callback runs, so a later close from
            // another thread still finds the store and waits.
            store.when_quiet(Box::new(move || STORES.retire(handle)));
        }
    })
}

/// Writes `value` under `key` unconditionally; the new revision goes to `*revision_out`
/// (optional, may be NULL). `key` is `key_len` bytes of UTF-8, not NUL-terminated.
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
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let value = unsafe { bytes_arg(value, value_len, "value")? };
        let revision = store.put(key, value)?;
        unsafe { write_opt(revision_out, revision) };
        Ok(())
    })
}

/// Reads the latest live entry of `key` into `*entry_out` (free with `ckv_entry_free`).
/// CKV_NOT_FOUND when the key was never written, or was deleted, purged or expired.
#[no_mangle]
pub unsafe extern "C" fn ckv_get(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    entry_out: *mut *mut ckv_entry,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        out_arg(entry_out, "entry_out")?;
        let entry = store.get(key)?;
        unsafe { *entry_out = ckv_entry::boxed(entry) };
        Ok(())
    })
}

/// Writes only if `key` has no live value (a delete tombstone counts as none);
/// otherwise CKV_CONFLICT, with the current revision in the error.
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
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let value = unsafe { bytes_arg(value, value_len, "value")? };
        let revision = store.create(key, value)?;
        unsafe { write_opt(revision_out, revision) };
        Ok(())
    })
}

/// Writes only if the latest revision of `key` is `revision` (a delete tombstone's revision
/// counts, and so does a purge marker's; `revision == 0` writes only a key that has never
/// been written); otherwise CKV_CONFLICT, with the current revision in the error
/// (`ckv_error_current_revision`).
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
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let value = unsafe { bytes_arg(value, value_len, "value")? };
        let new_revision = store.update(key, value, revision)?;
        unsafe { write_opt(revision_out, new_revision) };
        Ok(())
    })
}

/// Writes a delete tombstone for `key` (also when it has no live value). With
/// `revision != 0` only if the key's latest revision is `revision` (else CKV_CONFLICT).
/// The tombstone's revision goes to `*revision_out` (optional).
#[no_mangle]
pub unsafe extern "C" fn ckv_delete(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    revision: u64,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let tombstone = store.delete(key, revision)?;
        unsafe { write_opt(revision_out, tombstone) };
        Ok(())
    })
}

/// Drops the history of `key`, leaving a purge marker whose revision goes to
/// `*revision_out` (optional).
#[no_mangle]
pub unsafe extern "C" fn ckv_purge(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let marker = store.purge(key)?;
        unsafe { write_opt(revision_out, marker) };
        Ok(())
    })
}

/// Deletes every live key under `prefix` (which starts with '/'); how many goes to
/// `*count_out` (optional). Each key is deleted at the revision it was listed with, so a
/// key rewritten meanwhile keeps its newer value and is not counted.
#[no_mangle]
pub unsafe extern "C" fn ckv_delete_prefix(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    count_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let prefix = unsafe { text_arg(prefix, prefix_len, "prefix")? };
        let count = store.delete_prefix(prefix)?;
        unsafe { write_opt(count_out, count) };
        Ok(())
    })
}

/// The live keys under `prefix`, sorted, into `*keys_out` (free with `ckv_key_list_free`).
/// A prefix ending in '/' is segment-aligned; any other matches byte-wise.
#[no_mangle]
pub unsafe extern "C" fn ckv_keys(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    keys_out: *mut *mut ckv_key_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let prefix = unsafe { text_arg(prefix, prefix_len, "prefix")? };
        out_arg(keys_out, "keys_out")?;
        let keys = store.keys(prefix)?;
        unsafe { *keys_out = ckv_key_list::boxed(keys) };
        Ok(())
    })
}

/// The live entries under `prefix`, sorted by key, into `*entries_out`
/// (free with `ckv_entry_list_free`).
#[no_mangle]
pub unsafe extern "C" fn ckv_list(
    store: *mut ckv_store,
    prefix: *const c_char,
    prefix_len: usize,
    entries_out: *mut *mut ckv_entry_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let prefix = unsafe { text_arg(prefix, prefix_len, "prefix")? };
        out_arg(entries_out, "entries_out")?;
        let entries = store.list(prefix)?;
        unsafe { *entries_out = ckv_entry_list::boxed(entries) };
        Ok(())
    })
}

/// The retained revisions of `key`, oldest first, tombstones included, into
/// `*entries_out` (free with `ckv_entry_list_free`). CKV_NOT_FOUND if none is retained.
#[no_mangle]
pub unsafe extern "C" fn ckv_history(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    entries_out: *mut *mut ckv_entry_list,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        out_arg(entries_out, "entries_out")?;
        let entries = store.history(key)?;
        unsafe { *entries_out = ckv_entry_list::boxed(entries) };
        Ok(())
    })
}

/// The store's latest revision (0 when nothing was ever written) into `*revision_out`.
#[no_mangle]
pub unsafe extern "C" fn ckv_last_revision(
    store: *mut ckv_store,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        out_arg(revision_out, "revision_out")?;
        let revision = store.last_revision()?;
        unsafe { *revision_out = revision };
        Ok(())
    })
}

/// Where a read-modify-write callback puts the new value.
pub struct ckv_rmw_result {
    value: Option<Vec<u8>>,
}

/// The read-modify-write callback. `current` is the key's live entry, or NULL when the
/// key has none (borrowed for the call). Return CKV_OK after `ckv_rmw_set_value` to write;
/// return any other status to abort — `ckv_read_modify_write` then returns that status
/// (a code that is not a `ckv_status` becomes CKV_CANCELED).
/// It may be called several times (once per attempt) and must not free `current`.
pub type ckv_rmw_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        current: *const ckv_entry,
        result: *mut ckv_rmw_result,
    ) -> ckv_status,
>;

/// Sets the value a read-modify-write callback wants written (copied; the last call wins).
#[no_mangle]
pub unsafe extern "C" fn ckv_rmw_set_value(
    result: *mut ckv_rmw_result,
    value: *const u8,
    value_len: usize,
) -> ckv_status {
    guard(std::ptr::null_mut(), || {
        let result = unsafe { result.as_mut() }.ok_or_else(|| Error::invalid("result is NULL"))?;
        let value = unsafe { bytes_arg(value, value_len, "value")? };
        result.value = Some(value.to_vec());
        Ok(())
    })
}

/// Reads `key`, calls `callback(user_data, current, result)`, and writes the value it set
/// with create/update at the revision read (a delete tombstone's revision included).
/// On a conflicting concurrent write it retries with backoff (bounded; then CKV_CONFLICT).
/// The final revision goes to `*revision_out` (optional).
#[no_mangle]
pub unsafe extern "C" fn ckv_read_modify_write(
    store: *mut ckv_store,
    key: *const c_char,
    key_len: usize,
    callback: ckv_rmw_fn,
    user_data: *mut c_void,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let key = unsafe { text_arg(key, key_len, "key")? };
        let callback = callback.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let revision = store.read_modify_write(key, &mut |current| {
            let current = current.cloned().map(ckv_entry::new);
            let current_ptr = current
                .as_ref()
                .map_or(std::ptr::null(), |e| e as *const ckv_entry);
            let mut result = ckv_rmw_result { value: None };
            // SAFETY: a C function pointer given by the caller, called with valid pointers.
            let status = unsafe { callback(user_data, current_ptr, &mut result) };
            if status != CKV_OK {
                let kind = kind_of(status).unwrap_or(ErrorKind::Canceled);
                return Err(Error::new(
                    kind,
                    format!("read_modify_write callback returned status {status}"),
                ));
            }
            result.value.ok_or_else(|| {
                Error::invalid(
                    "read_modify_write callback returned CKV_OK without ckv_rmw_set_value",
                )
            })
        })?;
        unsafe { write_opt(revision_out, revision) };
        Ok(())
    })
}
