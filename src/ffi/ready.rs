//! `ckv_watch_ready`: a polled watch that tells its owner when events wait, for hosts
//! with an event loop of their own (Go's runtime, asyncio, libuv). The owner drains with
//! `ckv_watch_next(watch, 0, ...)` until CKV_TIMEOUT; the core's queue, overflow and
//! CANCELED apply as for any watch, and no thread is blocked per watch.

use super::store::{ckv_store, store_of};
use super::watch::{ckv_watch, ckv_watch_options, core_options, publish};
use super::{ckv_error, ckv_status, guard, out_arg, text_arg};
use crate::error::Error;
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
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: the caller passes `len` readable bytes at `key_or_prefix` (header contract).
        let target = unsafe { text_arg(key_or_prefix, len, "key_or_prefix")? };
        out_arg(watch_out, "watch_out")?;
        let ready = ready.ok_or_else(|| Error::invalid("ready is NULL"))?;
        let target_fn = ReadyTarget { ready, user_data };
        let watch = store.watch_ready(target, core_options(options), move || {
            // The whole target is captured (it is Send + Sync), not its raw fields.
            let target_fn = &target_fn;
            // SAFETY: a C function pointer and its user data, as given by the caller.
            unsafe { (target_fn.ready)(target_fn.user_data) };
        })?;
        publish(watch, watch_out)
    })
}
