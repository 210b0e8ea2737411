//! `ckv_read_modify_write`: the core's retry loop around a C callback that computes the
//! new value from the current entry.
//!
//! The `# Safety` contract is the header's conventions (as in `store`), plus the callback's.

use super::args::{bytes_arg, callback_arg, error_out, no_error_out, optional_out, text_arg};
use super::entry::ckv_entry;
use super::store::{ckv_store, store_of};
use super::{ckv_error, ckv_status, guard, kind_of, CKV_OK};
use crate::error::{Error, ErrorKind};
use std::ffi::{c_char, c_void};

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
///
/// # Safety
/// `result` is NULL or the `result` a `ckv_rmw_fn` received, during that call; `value` is
/// readable for `value_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ckv_rmw_set_value(
    result: *mut ckv_rmw_result,
    value: *const u8,
    value_len: usize,
) -> ckv_status {
    guard(no_error_out(), || {
        // SAFETY: `result` is NULL or the callback's own result, which nothing else
        // touches during the callback, as `# Safety` requires.
        let result = unsafe { result.as_mut() }.ok_or_else(|| Error::invalid("result is NULL"))?;
        // SAFETY: `value` readable for `value_len` bytes, as `# Safety` requires.
        let value = unsafe { bytes_arg(value, value_len, "value")? };
        result.value = Some(value.to_vec());
        Ok(())
    })
}

/// Reads `key`, calls `callback(user_data, current, result)`, and writes the value it set
/// with create/update at the revision read (a delete tombstone's revision included).
/// On a conflicting concurrent write it retries with backoff (bounded; then CKV_CONFLICT).
/// The final revision goes to `*revision_out` (optional).
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
/// `callback` is a function that behaves as `ckv_rmw_fn` says, given `user_data`.
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
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: `key` readable and `revision_out` NULL or writable, as `# Safety` requires.
        let (key, revision_out) =
            unsafe { (text_arg(key, key_len, "key")?, optional_out(revision_out)) };
        let callback = callback_arg(callback)?;
        let revision = store.read_modify_write(key, &mut |current| {
            let current = current.cloned().map(ckv_entry::new);
            let current_ptr = current
                .as_ref()
                .map_or(std::ptr::null(), |e| e as *const ckv_entry);
            let mut result = ckv_rmw_result { value: None };
            // SAFETY: the caller's function, called as `ckv_rmw_fn` documents: `current` NULL
            // or an entry alive for the call, `result` a valid `ckv_rmw_result`.
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
        revision_out.set(revision);
        Ok(())
    })
}
