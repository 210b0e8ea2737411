//! `ckv_error`: a failure's status, message and (for CONFLICT) current revision, handed
//! back through the same call that failed and owned by the caller.

use super::args::{free_handed, read_or};
use super::{ckv_status, status_of, CKV_INTERNAL};
use crate::error::Error;
use std::ffi::{c_char, CString};

/// A failure returned through `err_out`. Free it with `ckv_error_free`.
pub struct ckv_error {
    status: ckv_status,
    message: CString,
    current_revision: u64,
}

/// Longest message handed to C, in bytes: a safety net under the per-input bound
/// (`error::shown`), so no error message can grow with the input.
const MAX_MESSAGE: usize = 1024;

impl ckv_error {
    /// The C view of a core error; its message is the core's "NAME: message" text.
    pub(crate) fn new(error: Error) -> ckv_error {
        let mut text = error.to_string().replace('\0', "\\0");
        if text.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        ckv_error {
            status: status_of(error.kind()),
            message: CString::new(text).unwrap_or_default(),
            current_revision: error.current_revision(),
        }
    }
}

/// The failure's status code; `CKV_INTERNAL` for a NULL error.
///
/// # Safety
/// `error` is NULL or an error from `err_out` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_error_status(error: *const ckv_error) -> ckv_status {
    // SAFETY: NULL or a live error, as this function's `# Safety` requires.
    unsafe { read_or(error, CKV_INTERNAL, |e| e.status) }
}

/// The failure's message, NUL-terminated, starting with the status name. Borrowed:
/// valid until `ckv_error_free(error)`. An empty string for a NULL error.
///
/// # Safety
/// `error` is NULL or an error from `err_out` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_error_message(error: *const ckv_error) -> *const c_char {
    // SAFETY: NULL or a live error, as this function's `# Safety` requires.
    unsafe { read_or(error, c"".as_ptr(), |e| e.message.as_ptr()) }
}

/// For `CKV_CONFLICT`: the key's revision when the write was refused (0 if the key has
/// no retained revision). 0 for other failures and for NULL.
///
/// # Safety
/// `error` is NULL or an error from `err_out` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ckv_error_current_revision(error: *const ckv_error) -> u64 {
    // SAFETY: NULL or a live error, as this function's `# Safety` requires.
    unsafe { read_or(error, 0, |e| e.current_revision) }
}

/// Frees an error returned through `err_out`. NULL is a no-op.
///
/// # Safety
/// `error` is NULL or an error from `err_out`, freed only once and not used after.
#[no_mangle]
pub unsafe extern "C" fn ckv_error_free(error: *mut ckv_error) {
    // SAFETY: handed over by `guard` and freed once, as this function's `# Safety` requires.
    unsafe { free_handed(error) }
}
