//! `ckv_watch_ready`: a polled watch that tells its owner when events wait, for hosts
//! with an event loop of their own (Go's runtime, asyncio, libuv). The owner drains with
//! `ckv_watch_next(watch, 0, ...)` until CKV_TIMEOUT; the core's queue, overflow and
//! CANCELED apply as for any watch, and no thread is blocked per watch.

use super::args::callback_arg;
use super::store::ckv_store;
use super::watch::{ckv_watch, ckv_watch_options, open_watch};
use super::{ckv_error, ckv_status};
use crate::store::Store;
use std::ffi::{c_char, c_void};

/// A ready notification: `user_data` as given to `ckv_watch_ready`. It runs on a library
/// delivery thread and should only wake the owner (a write to a pipe, a channel send):
/// the events themselves are taken with `ckv_watch_next`.
pub type ckv_ready_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

struct ReadyTarget {
    ready: unsafe extern "C" fn(*mut c_void),
    user_data: *mut c_void,
}

// SAFETY: the caller of `ckv_watch_ready` promises its function and user data may be used
// from the library's delivery threads (documented on the function); the core calls the
// hook from one delivery thread at a time for a watch.
unsafe impl Send for ReadyTarget {}
// SAFETY: as above; the target is only read.
unsafe impl Sync for ReadyTarget {}

/// Like `ckv_watch_open`, but `ready(user_data)` is called on a library delivery thread
/// whenever events wait after `ckv_watch_next` last returned CKV_TIMEOUT for this watch
/// (and once the first events are queued): take them with `ckv_watch_next(watch, 0, ...)`
/// until CKV_TIMEOUT, then wait for the next call. Overflow, catch-up and CANCELED work
/// as for a polled watch. After `ckv_watch_close` returns on a thread that is not a
/// delivery thread, `ready` is not running and is never called again, so `user_data` may
/// then be freed. UNAVAILABLE when the delivery threads cannot be started.
///
/// # Safety
/// As for `ckv_watch_open`; moreover `ready` and `user_data` may be used from the
/// library's delivery threads until the watch is closed (see above).
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_ready(
    store: *mut ckv_store,
    key_or_prefix: *const c_char,
    len: usize,
    options: *const ckv_watch_options,
    ready: ckv_ready_fn,
    user_data: *mut c_void,
    watch_out: *mut *mut ckv_watch,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let open = |store: &Store, target: &str, options| {
        let target_fn = ReadyTarget {
            ready: callback_arg(ready)?,
            user_data,
        };
        store.watch_ready(target, options, move || {
            // The whole target is captured (it is Send + Sync), not its raw fields.
            let target_fn = &target_fn;
            // SAFETY: the caller's function and user data, usable from delivery threads
            // (`# Safety`).
            unsafe { (target_fn.ready)(target_fn.user_data) };
        })
    };
    // SAFETY: forwarded: this function's `# Safety` includes `open_watch`'s.
    unsafe {
        open_watch(
            store,
            (key_or_prefix, len),
            options,
            watch_out,
            err_out,
            open,
        )
    }
}
