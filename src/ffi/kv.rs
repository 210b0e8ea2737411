//! The key-value operations of the C ABI: put, get, create, update, delete, purge,
//! delete_prefix, keys, list and history.
//!
//! They come in three shapes, each written once below: a write of a value
//! ([`write_value`]: key and value in, revision out), a write of a key or prefix alone
//! ([`write_key`]: revision or count out), and a read handed over to C ([`read_key`]: an
//! entry or list the caller frees). An entry point names its shape and the `Store`
//! method it calls; the shape checks the arguments inside the store prologue
//! ([`with_store`]) and writes the `_out` parameter only on success.
//!
//! Every function here has the header's `# Safety` contract: buffers are NULL (with
//! length 0) or readable for their length during the call, and each `*_out` pointer is
//! NULL or valid for a write. Handles are not pointers: any value is checked.

use super::args::{bytes_arg, error_out, hand_over, optional_out, required_out, text_arg};
use super::entry::{ckv_entry, ckv_entry_list, ckv_key_list};
use super::store::{ckv_store, with_store};
use super::{ckv_error, ckv_status};
use crate::error::Result;
use crate::store::Store;
use std::ffi::c_char;

/// A key or prefix argument: `(ptr, len)` of UTF-8 and its name for error messages.
type TextArg<'a> = (*const c_char, usize, &'a str);

/// put, create and update: a key and a value in, the new revision out (optional).
///
/// # Safety
/// The header's conventions for `key`, `value`, `revision_out` and `err_out`.
pub(super) unsafe fn write_value(
    handle: *mut ckv_store,
    (key, key_len): (*const c_char, usize),
    (value, value_len): (*const u8, usize),
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
    write: impl FnOnce(&Store, &str, &[u8]) -> Result<u64>,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(handle, err_out, |store| {
        // SAFETY: buffers readable, `revision_out` NULL or writable, by `# Safety`.
        let (key, value, revision_out) = unsafe {
            (
                text_arg(key, key_len, "key")?,
                bytes_arg(value, value_len, "value")?,
                optional_out(revision_out),
            )
        };
        revision_out.set(write(store, key, value)?);
        Ok(())
    })
}

/// delete, purge and delete_prefix: a key or prefix in, a revision or count out
/// (optional).
///
/// # Safety
/// The header's conventions for the text, `number_out` and `err_out`.
unsafe fn write_key(
    handle: *mut ckv_store,
    (text, text_len, what): TextArg<'_>,
    number_out: *mut u64,
    err_out: *mut *mut ckv_error,
    write: impl FnOnce(&Store, &str) -> Result<u64>,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(handle, err_out, |store| {
        // SAFETY: the text readable, `number_out` NULL or writable, by `# Safety`.
        let (text, number_out) =
            unsafe { (text_arg(text, text_len, what)?, optional_out(number_out)) };
        number_out.set(write(store, text)?);
        Ok(())
    })
}

/// get, keys, list and history: a key or prefix in, a result handed over to C out
/// (required; the caller frees it with its `_free` function).
///
/// # Safety
/// The header's conventions for the text, `result_out` and `err_out`.
unsafe fn read_key<T>(
    handle: *mut ckv_store,
    (text, text_len, what): TextArg<'_>,
    (result_out, out_name): (*mut *mut T, &str),
    err_out: *mut *mut ckv_error,
    read: impl FnOnce(&Store, &str) -> Result<T>,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(handle, err_out, |store| {
        // SAFETY: the text readable and `result_out` writable, by `# Safety`.
        let (text, result_out) = unsafe {
            (
                text_arg(text, text_len, what)?,
                required_out(result_out, out_name)?,
            )
        };
        result_out.set(hand_over(read(store, text)?));
        Ok(())
    })
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
    let (key, value) = ((key, key_len), (value, value_len));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, Store::put) }
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
    let (key, result_out) = ((key, key_len, "key"), (entry_out, "entry_out"));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe {
        read_key(store, key, result_out, err_out, |s, t| {
            s.get(t).map(ckv_entry::new)
        })
    }
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
    let (key, value) = ((key, key_len), (value, value_len));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, Store::create) }
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
    let (key, value) = ((key, key_len), (value, value_len));
    let update = |store: &Store, key: &str, value: &[u8]| store.update(key, value, revision);
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_value(store, key, value, revision_out, err_out, update) }
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
    let key = (key, key_len, "key");
    let delete = |store: &Store, key: &str| store.delete(key, revision);
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_key(store, key, revision_out, err_out, delete) }
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
    let key = (key, key_len, "key");
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_key(store, key, revision_out, err_out, Store::purge) }
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
    let prefix = (prefix, prefix_len, "prefix");
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe { write_key(store, prefix, count_out, err_out, Store::delete_prefix) }
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
    let (prefix, result_out) = ((prefix, prefix_len, "prefix"), (keys_out, "keys_out"));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe {
        read_key(store, prefix, result_out, err_out, |s, t| {
            s.keys(t).map(ckv_key_list::new)
        })
    }
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
    let (prefix, result_out) = ((prefix, prefix_len, "prefix"), (entries_out, "entries_out"));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe {
        read_key(store, prefix, result_out, err_out, |s, t| {
            s.list(t).map(ckv_entry_list::new)
        })
    }
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
    let (key, result_out) = ((key, key_len, "key"), (entries_out, "entries_out"));
    // SAFETY: forwarded: the helper's `# Safety` is this function's.
    unsafe {
        read_key(store, key, result_out, err_out, |s, t| {
            s.history(t).map(ckv_entry_list::new)
        })
    }
}
