//! Entries and lists handed to C: owned by the caller, read through accessors, freed
//! with their `_free` function. Keys are also NUL-terminated so C can print them.

use super::args::{free_handed, optional_out, read_or};
use super::guard_value;
use super::status::UNKNOWN;
use crate::entry::{Entry, Operation};
use std::ffi::c_char;

/// What a write did: one of the `CKV_OP_*` codes.
pub type ckv_operation = i32;
/// A value was written.
pub const CKV_OP_PUT: ckv_operation = 1;
/// The key was deleted (a tombstone).
pub const CKV_OP_DELETE: ckv_operation = 2;
/// The key's history was purged.
pub const CKV_OP_PURGE: ckv_operation = 3;
/// The key's TTL ran out.
pub const CKV_OP_EXPIRED: ckv_operation = 4;

/// One revisioned entry: key, value, revision, operation, timestamp.
pub struct ckv_entry {
    entry: Entry,
    /// The key followed by a NUL, for C callers that want a C string.
    key_z: Box<[u8]>,
}

impl ckv_entry {
    pub(crate) fn new(entry: Entry) -> ckv_entry {
        let mut key_z = Vec::with_capacity(entry.key.len() + 1);
        key_z.extend_from_slice(entry.key.as_bytes());
        key_z.push(0);
        ckv_entry {
            entry,
            key_z: key_z.into_boxed_slice(),
        }
    }
}

fn operation_code(op: Operation) -> ckv_operation {
    op as ckv_operation
}

/// The name of an operation code ("PUT", "DELETE", "PURGE", "EXPIRED"; "UNKNOWN" otherwise).
/// A static string: never free it.
#[no_mangle]
pub extern "C" fn ckv_operation_name(operation: ckv_operation) -> *const c_char {
    guard_value(UNKNOWN.as_ptr(), || {
        match operation {
            CKV_OP_PUT => c"PUT",
            CKV_OP_DELETE => c"DELETE",
            CKV_OP_PURGE => c"PURGE",
            CKV_OP_EXPIRED => c"EXPIRED",
            _ => UNKNOWN,
        }
        .as_ptr()
    })
}

/// The entry's key: NUL-terminated UTF-8, its byte length (without the NUL) stored in
/// `*len_out` when `len_out` is not NULL. Borrowed from the entry. NULL for a NULL entry.
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed); `len_out` is NULL or valid for a
/// write of a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_key(
    entry: *const ckv_entry,
    len_out: *mut usize,
) -> *const c_char {
    // SAFETY: NULL or valid for a write, as this function's `# Safety` requires.
    let len_out = unsafe { optional_out(len_out) };
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe {
        read_or(entry, std::ptr::null(), |e| {
            len_out.set(e.key_z.len() - 1);
            e.key_z.as_ptr() as *const c_char
        })
    }
}

/// The entry's value bytes (not NUL-terminated), its length in `*len_out` when `len_out`
/// is not NULL. Borrowed from the entry; never NULL for a non-NULL entry, even if empty.
///
/// # Safety
/// As for `ckv_entry_key`.
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_value(
    entry: *const ckv_entry,
    len_out: *mut usize,
) -> *const u8 {
    // SAFETY: NULL or valid for a write, as this function's `# Safety` requires.
    let len_out = unsafe { optional_out(len_out) };
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe {
        read_or(entry, std::ptr::null(), |e| {
            len_out.set(e.entry.value.len());
            if e.entry.value.is_empty() {
                c"".as_ptr() as *const u8
            } else {
                e.entry.value.as_ptr()
            }
        })
    }
}

/// The store-wide revision of this write; 0 for NULL.
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_revision(entry: *const ckv_entry) -> u64 {
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe { read_or(entry, 0, |e| e.entry.revision) }
}

/// The operation (`CKV_OP_*`); 0 for NULL.
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_operation(entry: *const ckv_entry) -> ckv_operation {
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe { read_or(entry, 0, |e| operation_code(e.entry.operation)) }
}

/// When the write was recorded, in nanoseconds since the Unix epoch; 0 for NULL.
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_timestamp_ns(entry: *const ckv_entry) -> u64 {
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe { read_or(entry, 0, |e| e.entry.timestamp_ns) }
}

/// The lease the write was attached to; 0 for none (and for NULL).
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_lease(entry: *const ckv_entry) -> u64 {
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe { read_or(entry, 0, |e| e.entry.lease) }
}

/// Whether the write was quiet (a lease keepalive, or a write with `quiet`); false for NULL.
///
/// # Safety
/// `entry` is NULL or a live entry (owned or borrowed).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_is_quiet(entry: *const ckv_entry) -> bool {
    // SAFETY: NULL or a live entry, as this function's `# Safety` requires.
    unsafe { read_or(entry, false, |e| e.entry.quiet) }
}

/// Frees an entry returned by `ckv_get`. NULL is a no-op. Never free an entry borrowed
/// from a list or a callback.
///
/// # Safety
/// `entry` is NULL or an entry from `ckv_get`, freed only once and not used after.
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_free(entry: *mut ckv_entry) {
    // SAFETY: handed over by `ckv_get` and freed once, as this function's `# Safety` requires.
    unsafe { free_handed(entry) }
}

/// A list of entries (from `ckv_list` and `ckv_history`).
pub struct ckv_entry_list {
    entries: Vec<ckv_entry>,
}

impl ckv_entry_list {
    pub(crate) fn new(entries: Vec<Entry>) -> ckv_entry_list {
        ckv_entry_list {
            entries: entries.into_iter().map(ckv_entry::new).collect(),
        }
    }
}

/// How many entries the list holds; 0 for NULL.
///
/// # Safety
/// `list` is NULL or a list not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_list_len(list: *const ckv_entry_list) -> usize {
    // SAFETY: NULL or a list not yet freed, as this function's `# Safety` requires.
    unsafe { read_or(list, 0, |l| l.entries.len()) }
}

/// The entry at `index`, borrowed from the list (do not free it); NULL when out of range.
///
/// # Safety
/// `list` is NULL or a list not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_list_get(
    list: *const ckv_entry_list,
    index: usize,
) -> *const ckv_entry {
    // SAFETY: NULL or a list not yet freed, as this function's `# Safety` requires.
    unsafe {
        read_or(list, std::ptr::null(), |l| {
            l.entries
                .get(index)
                .map_or(std::ptr::null(), |e| e as *const ckv_entry)
        })
    }
}

/// Frees a list and every entry in it. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or a list from `ckv_list` or `ckv_history`, freed only once and not
/// used after (nor the entries borrowed from it).
#[no_mangle]
pub unsafe extern "C" fn ckv_entry_list_free(list: *mut ckv_entry_list) {
    // SAFETY: handed over by `ckv_list`/`ckv_history`, freed once, as `# Safety` requires.
    unsafe { free_handed(list) }
}

/// A sorted list of keys (from `ckv_keys`).
pub struct ckv_key_list {
    /// Each key followed by a NUL.
    keys: Vec<Box<[u8]>>,
}

impl ckv_key_list {
    pub(crate) fn new(keys: Vec<String>) -> ckv_key_list {
        let keys = keys
            .into_iter()
            .map(|k| {
                let mut z = k.into_bytes();
                z.push(0);
                z.into_boxed_slice()
            })
            .collect();
        ckv_key_list { keys }
    }
}

/// How many keys the list holds; 0 for NULL.
///
/// # Safety
/// `list` is NULL or a list not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_key_list_len(list: *const ckv_key_list) -> usize {
    // SAFETY: NULL or a list not yet freed, as this function's `# Safety` requires.
    unsafe { read_or(list, 0, |l| l.keys.len()) }
}

/// The key at `index`, NUL-terminated, its byte length in `*len_out` when `len_out` is not
/// NULL; borrowed from the list. NULL when out of range.
///
/// # Safety
/// `list` is NULL or a list not yet freed; `len_out` is NULL or valid for a write of a
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn ckv_key_list_get(
    list: *const ckv_key_list,
    index: usize,
    len_out: *mut usize,
) -> *const c_char {
    // SAFETY: NULL or valid for a write, as this function's `# Safety` requires.
    let len_out = unsafe { optional_out(len_out) };
    // SAFETY: NULL or a list not yet freed, as this function's `# Safety` requires.
    unsafe {
        read_or(list, std::ptr::null(), |l| {
            let Some(key) = l.keys.get(index) else {
                return std::ptr::null();
            };
            len_out.set(key.len() - 1);
            key.as_ptr() as *const c_char
        })
    }
}

/// Frees a key list. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or a list from `ckv_keys`, freed only once and not used after.
#[no_mangle]
pub unsafe extern "C" fn ckv_key_list_free(list: *mut ckv_key_list) {
    // SAFETY: handed over by `ckv_keys` and freed once, as this function's `# Safety` requires.
    unsafe { free_handed(list) }
}
