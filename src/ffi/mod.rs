//! The C ABI: the only place with `extern "C"` and raw pointers.
//!
//! Every exported function has the same shape: check its pointers, call the safe core,
//! map the result. [`guard`] is the single boundary: it catches panics (they become
//! `CKV_INTERNAL`, and are not printed to the host's stderr), turns a core `Error` into its `ckv_status`, and hands the message
//! back through the caller's optional `ckv_error **err_out` — never a thread-local, since
//! a Go goroutine may run its next cgo call on another OS thread.
//!
//! Stores and watches are handed out as opaque handles from a generation-checked table
//! (see `handles`), so a handle used after its `_close` is refused with `CKV_CLOSED`
//! instead of reading freed memory. Entries, lists and errors are plain heap objects the
//! caller owns and frees with their `_free` function.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use crate::error::{Error, ErrorKind, Result};
use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

pub mod entry;
pub mod error;
pub mod handles;
pub mod ready;
pub mod store;
pub mod watch;

pub use self::error::ckv_error;

/// A status code: `CKV_OK` (0) or the kind of failure. Every fallible function returns one.
pub type ckv_status = i32;

/// Success.
pub const CKV_OK: ckv_status = 0;
/// The key has no live value.
pub const CKV_NOT_FOUND: ckv_status = 1;
/// A compare-and-swap lost; `ckv_error_current_revision` gives the key's revision.
pub const CKV_CONFLICT: ckv_status = 2;
/// A NULL pointer, bad key, bad UTF-8, bad JSON or bad URL.
pub const CKV_INVALID_ARGUMENT: ckv_status = 3;
/// The operation did not finish in time.
pub const CKV_TIMEOUT: ckv_status = 4;
/// The store or watch is closed (or was opened before `fork()`).
pub const CKV_CLOSED: ckv_status = 5;
/// The backend cannot be reached or cannot serve.
pub const CKV_UNAVAILABLE: ckv_status = 6;
/// Authentication failed.
pub const CKV_UNAUTHORIZED: ckv_status = 7;
/// A size or count limit was hit (value too large, too many watchers, overflow).
pub const CKV_LIMIT: ckv_status = 8;
/// The backend or its server version cannot do this.
pub const CKV_UNSUPPORTED: ckv_status = 9;
/// Abandoned on purpose (by a callback, or a watch ending).
pub const CKV_CANCELED: ckv_status = 10;
/// A bug inside coordkv, including a caught panic.
pub const CKV_INTERNAL: ckv_status = 11;
/// Authenticated but not permitted (subject, stream or bucket denied).
pub const CKV_PERMISSION_DENIED: ckv_status = 12;

pub(crate) fn status_of(kind: ErrorKind) -> ckv_status {
    kind as ckv_status
}

pub(crate) fn kind_of(status: ckv_status) -> Option<ErrorKind> {
    ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| *k as ckv_status == status)
}

thread_local! {
    /// How deep the calling thread is inside exported functions.
    static INSIDE: Cell<u32> = const { Cell::new(0) };
}

/// Keeps panics inside coordkv off the host's stderr: they are caught and returned as
/// `CKV_INTERNAL` with their message. The hook is installed once and passes every panic
/// that is not coordkv's (outside an exported call and off coordkv's own threads) to the
/// hook that was there before.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = INSIDE.with(Cell::get) > 0
                || std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("coordkv-"));
            if !ours {
                previous(info);
            }
        }));
    });
}

/// `body` with panics caught, counted as inside coordkv for [`quiet_panics`].
fn catch<T>(body: impl FnOnce() -> T) -> std::thread::Result<T> {
    quiet_panics();
    INSIDE.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(body));
    INSIDE.with(|d| d.set(d.get() - 1));
    result
}

/// Runs the body of an exported function: panics become `CKV_INTERNAL`, errors become
/// their status, and on failure `*err_out` (when `err_out` is not NULL) receives a new
/// `ckv_error` the caller frees with `ckv_error_free`.
pub(crate) fn guard(err_out: *mut *mut ckv_error, body: impl FnOnce() -> Result<()>) -> ckv_status {
    let error = match catch(body) {
        Ok(Ok(())) => return CKV_OK,
        Ok(Err(error)) => error,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Error::internal(format!("panic inside coordkv: {what}"))
        }
    };
    let status = status_of(error.kind());
    if !err_out.is_null() {
        // SAFETY: the caller passes either NULL or a valid `ckv_error **`.
        unsafe { *err_out = self::error::into_raw(error) };
    }
    status
}

/// Like [`guard`] for functions that cannot report an error (accessors, `_free`):
/// a panic is swallowed and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch(body).unwrap_or(fallback)
}

/// `(ptr, len)` as a byte slice; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length {len} is too large")));
    }
    // SAFETY: the caller guarantees `ptr` points to `len` readable bytes for this call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `(ptr, len)` as UTF-8 text (a key or prefix; the core validates its shape). The length
/// is checked first, so an over-long length is refused before any byte is read.
pub(crate) unsafe fn text_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str> {
    if len > crate::key::MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "{what} is {len} bytes; the limit is {} bytes",
            crate::key::MAX_KEY_LEN
        )));
    }
    let bytes = unsafe { bytes_arg(ptr as *const u8, len, what)? };
    crate::key::utf8(bytes, what)
}

/// A NUL-terminated UTF-8 string argument that must not be NULL.
pub(crate) unsafe fn cstr_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    crate::key::utf8(bytes, what)
}

/// Checks that a required output pointer is not NULL.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    Ok(())
}

/// Writes through an optional output pointer (NULL means the caller does not want it).
pub(crate) unsafe fn write_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL output pointers are valid for writes by contract.
        unsafe { ptr.write(value) };
    }
}

/// The library version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn ckv_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// How many store and watch handles are open (closing ones included: a handle closed
/// from inside a callback is released when that callback returns). For tests and leak
/// checks; either pointer may be NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_open_handles(stores_out: *mut usize, watches_out: *mut usize) {
    guard_value((), || unsafe {
        write_opt(stores_out, store::open_stores());
        write_opt(watches_out, watch::open_watches());
    })
}

/// The name of a status code ("OK", "NOT_FOUND", ...; "UNKNOWN" for anything else).
/// A static string: never free it.
#[no_mangle]
pub extern "C" fn ckv_status_name(status: ckv_status) -> *const c_char {
    static NAMES: once_cell::sync::Lazy<Vec<std::ffi::CString>> =
        once_cell::sync::Lazy::new(|| {
            let mut names = vec![std::ffi::CString::new("OK").unwrap()];
            names.extend(
                ErrorKind::ALL
                    .iter()
                    .map(|k| std::ffi::CString::new(k.name()).unwrap()),
            );
            names
        });
    const UNKNOWN: &CStr = c"UNKNOWN";
    guard_value(UNKNOWN.as_ptr(), || {
        let index = if status == CKV_OK {
            Some(0)
        } else {
            ErrorKind::ALL
                .iter()
                .position(|k| *k as ckv_status == status)
                .map(|i| i + 1)
        };
        index.map_or(UNKNOWN.as_ptr(), |i| NAMES[i].as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let mut err: *mut ckv_error = std::ptr::null_mut();
        let status = guard(&mut err, || panic!("boom"));
        assert_eq!(status, CKV_INTERNAL);
        let message = unsafe { CStr::from_ptr(error::ckv_error_message(err)) };
        assert!(message.to_str().unwrap().contains("boom"));
        unsafe { error::ckv_error_free(err) };
    }

    #[test]
    fn statuses_map_one_to_one_onto_error_kinds() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind_of(status_of(kind)), Some(kind));
            let name = unsafe { CStr::from_ptr(ckv_status_name(status_of(kind))) };
            assert_eq!(name.to_str().unwrap(), kind.name());
        }
        assert_eq!(kind_of(CKV_OK), None);
    }
}
