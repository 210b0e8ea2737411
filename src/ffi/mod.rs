//! The C ABI: the only place with `extern "C"` and raw pointers.
//!
//! Every exported function has the same shape: check its arguments with the helpers of
//! `args` (one documented `unsafe` each), call the safe core, map the result. [`guard`]
//! (for functions that return a `ckv_status`) and [`guard_value`] (for accessors, names
//! and `_free`) are the single boundary, and every exported function runs inside one: they
//! catch panics (a panic becomes `CKV_INTERNAL`, and is not printed to the host's stderr),
//! and `guard` turns a core `Error` into its `ckv_status` and hands the message back
//! through the caller's optional `ckv_error **err_out` — never a thread-local, since a Go
//! goroutine may run its next cgo call on another OS thread.
//!
//! Stores and watches are handed out as opaque handles from a generation-checked table
//! (see `handles`), so a handle used after its `_close` is refused with `CKV_CLOSED`
//! instead of reading freed memory. Entries, lists, events and errors are plain heap
//! objects handed over by `args::hand_over`; the caller owns them and frees each with its
//! `_free` function, all of which go through `args::free_handed`.
//!
//! Every `unsafe` block says why it holds (`SAFETY:`), and every `unsafe extern "C"`
//! function states its contract (`# Safety`, copied into the header); clippy enforces both.

#![allow(non_camel_case_types)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

use crate::error::{Error, Result};
use std::cell::Cell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

pub mod status;

pub(crate) mod args;
pub mod entry;
pub mod error;
pub mod event;
pub mod handles;
pub mod kv;
pub mod lease;
pub mod ready;
pub mod rmw;
pub mod store;
pub mod watch;
pub mod write_options;

pub use self::error::ckv_error;
pub use self::status::*;

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
/// their status, and on failure `err_out` (see [`args::error_out`]) receives a new
/// `ckv_error` the caller frees with `ckv_error_free`.
pub(crate) fn guard(
    err_out: args::Out<'_, *mut ckv_error>,
    body: impl FnOnce() -> Result<()>,
) -> ckv_status {
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
    err_out.set_with(|| args::hand_over(ckv_error::new(error)));
    status
}

/// Like [`guard`] for functions that cannot report an error (accessors, `_free`):
/// a panic is swallowed and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch(body).unwrap_or(fallback)
}

/// The library version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn ckv_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    guard_value(status::UNKNOWN.as_ptr(), || status::c_name(VERSION))
}

/// How many store and watch handles are open (closing ones included: a handle closed
/// from inside a callback is released when that callback returns). For tests and leak
/// checks; either pointer may be NULL.
///
/// # Safety
/// Each pointer is NULL or valid for a write of a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn ckv_open_handles(stores_out: *mut usize, watches_out: *mut usize) {
    // SAFETY: NULL or valid for a write, as this function's `# Safety` requires.
    let (stores_out, watches_out) = unsafe {
        (
            args::optional_out(stores_out),
            args::optional_out(watches_out),
        )
    };
    guard_value((), || {
        stores_out.set(store::open_stores());
        watches_out.set(watch::open_watches());
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let mut err: *mut ckv_error = std::ptr::null_mut();
        // SAFETY: a local, valid for a write.
        let status = guard(unsafe { args::error_out(&mut err) }, || panic!("boom"));
        assert_eq!(status, CKV_INTERNAL);
        // SAFETY: `err` was just handed over by `guard`; freed once, below.
        let message = unsafe { std::ffi::CStr::from_ptr(error::ckv_error_message(err)) };
        assert!(message
            .to_str()
            .unwrap()
            .starts_with("INTERNAL: panic inside coordkv: boom"));
        // SAFETY: as above; not used after this.
        unsafe { error::ckv_error_free(err) };
    }
}
