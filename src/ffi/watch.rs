//! Watch handles: `ckv_watch_open` (poll with `ckv_watch_next`) and `ckv_watch_callback`
//! (events pushed to a C function on the library's delivery threads). The events
//! themselves are in `event`.
//!
//! A watch handle lives in a generation-checked table like stores (its kind is part of the
//! handle, so one is never taken for the other), so a closed or stale handle fails with
//! CKV_CLOSED. A watch closed from inside a callback keeps its slot, closing, until that
//! callback returns, so the owner's close can still find it and wait. The guarantees
//! (order, overflow, quiescing on close) are the core's; this file only translates.

use super::args::{callback_arg, error_out, hand_over, required_out, text_arg};
use super::event::ckv_event;
use super::handles::{Closable, HandleTable, Kind};
use super::store::{ckv_store, store_of};
use super::{ckv_error, ckv_status, guard, guard_value};
use crate::error::Result;
use crate::store::Store;
use crate::watch::{Watch, WatchOptions, DEFAULT_BUFFER_SIZE};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// An open watch. Opaque; safe to use from many threads. Close it with `ckv_watch_close`.
pub struct ckv_watch {
    _opaque: [u8; 0],
}

static WATCHES: HandleTable<Watch> = HandleTable::new("watch", Kind::Watch);

impl Closable for Watch {
    fn close(&self) {
        Watch::close(self)
    }
    fn when_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        Watch::when_quiet(self, action)
    }
}

/// Options of a watch. Fill it with `ckv_watch_options_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ckv_watch_options {
    /// Watch every key starting with the given text (a prefix) instead of one exact key.
    pub prefix: bool,
    /// Replay every retained event at or after this revision first; 0 means from now on.
    pub start_revision: u64,
    /// Send the current values first, then CKV_EVENT_SYNCED. Excludes start_revision.
    pub snapshot: bool,
    /// Attach the key's previous live value to data events (`ckv_event_prev_entry`).
    pub prev_value: bool,
    /// Skip DELETE, PURGE and EXPIRED events.
    pub ignore_deletes: bool,
    /// Most live events waiting to be taken before the watch is CANCELED(overflow).
    pub buffer_size: usize,
    /// Send CKV_EVENT_PROGRESS every this many milliseconds; 0 means never.
    pub progress_interval_ms: u64,
    /// When events in scope are lost before they were read (history trimmed on the
    /// server), deliver a fresh snapshot and CKV_EVENT_SYNCED, each marked
    /// `ckv_event_is_resync`, instead of CKV_CANCEL_HISTORY_LOST; the watch goes on.
    pub resync: bool,
    /// Also deliver quiet writes (lease keepalives, writes with `quiet`).
    pub quiet_writes: bool,
}

/// Fills `options` with the defaults: an exact-key watch from now on, no snapshot, no
/// previous values, deletes included, a 1024-event buffer, no progress. NULL is a no-op.
///
/// # Safety
/// `options` is NULL or valid for a write of a `ckv_watch_options`.
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_options_init(options: *mut ckv_watch_options) {
    // SAFETY: NULL or writable, as this function's `# Safety` requires.
    let options = unsafe { super::args::optional_out(options) };
    guard_value((), || {
        options.set(ckv_watch_options {
            prefix: false,
            start_revision: 0,
            snapshot: false,
            prev_value: false,
            ignore_deletes: false,
            buffer_size: DEFAULT_BUFFER_SIZE,
            progress_interval_ms: 0,
            resync: false,
            quiet_writes: false,
        });
    })
}

/// The core's options for the C struct; the defaults for NULL.
///
/// # Safety
/// `options` is NULL or points to a readable `ckv_watch_options`.
unsafe fn core_options(options: *const ckv_watch_options) -> WatchOptions {
    // SAFETY: NULL or readable, by this function's contract.
    match unsafe { options.as_ref() } {
        None => WatchOptions::default(),
        Some(o) => WatchOptions {
            prefix: o.prefix,
            start_revision: o.start_revision,
            snapshot: o.snapshot,
            prev_value: o.prev_value,
            ignore_deletes: o.ignore_deletes,
            buffer_size: o.buffer_size,
            progress_interval: (o.progress_interval_ms > 0)
                .then(|| Duration::from_millis(o.progress_interval_ms)),
            resync: o.resync,
            quiet_writes: o.quiet_writes,
        },
    }
}

/// Open watch handles, closing ones included (for tests: every handle accounted for).
pub(crate) fn open_watches() -> usize {
    WATCHES.live()
}

/// Opens a watch on `key_or_prefix` (`len` bytes of UTF-8; a prefix when
/// `options->prefix`). Named `_open` (not `ckv_watch`) because C cannot have a function
/// and the `ckv_watch` type under one name; close it with `ckv_watch_close`.
/// `options` may be NULL for the defaults. Poll the watch with `ckv_watch_next`.
/// Errors: INVALID_ARGUMENT (bad key or options, a start_revision of UINT64_MAX), LIMIT
/// (the store's max_watchers), CLOSED, UNSUPPORTED (a backend without watches),
/// UNAVAILABLE (the progress thread cannot be started; nothing was opened).
///
/// # Safety
/// `key_or_prefix` is readable for `len` bytes; `options` is NULL or readable;
/// `watch_out` and `err_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_open(
    store: *mut ckv_store,
    key_or_prefix: *const c_char,
    len: usize,
    options: *const ckv_watch_options,
    watch_out: *mut *mut ckv_watch,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let target = (key_or_prefix, len);
    // SAFETY: forwarded: this function's `# Safety` is `open_watch`'s.
    unsafe { open_watch(store, target, options, watch_out, err_out, Store::watch) }
}

/// What every watch-opening entry point does around its own `open`: convert the
/// arguments, open the watch on the store, hand its handle to C.
///
/// # Safety
/// As for `ckv_watch_open`.
pub(super) unsafe fn open_watch(
    store: *mut ckv_store,
    (key_or_prefix, len): (*const c_char, usize),
    options: *const ckv_watch_options,
    watch_out: *mut *mut ckv_watch,
    err_out: *mut *mut ckv_error,
    open: impl FnOnce(&Store, &str, WatchOptions) -> Result<Watch>,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let store = store_of(store)?;
        // SAFETY: readable, readable and writable, as this function's `# Safety` requires.
        let (target, options, watch_out) = unsafe {
            (
                text_arg(key_or_prefix, len, "key_or_prefix")?,
                core_options(options),
                required_out(watch_out, "watch_out")?,
            )
        };
        WATCHES.publish(open(&store, target, options)?, watch_out)
    })
}

/// Takes the next event of a polled watch into `*event_out` (free with `ckv_event_free`).
/// `timeout_ms`: 0 returns at once, negative waits forever. Returns CKV_OK with an event,
/// CKV_TIMEOUT when none came in time, CKV_CLOSED after the final CKV_EVENT_CANCELED was
/// taken or once the watch is closed; INVALID_ARGUMENT for a callback watch.
///
/// # Safety
/// `event_out` and `err_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_next(
    watch: *mut ckv_watch,
    timeout_ms: i64,
    event_out: *mut *mut ckv_event,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        let watch = WATCHES.lookup(watch)?;
        // SAFETY: writable, as this function's `# Safety` requires.
        let event_out = unsafe { required_out(event_out, "event_out")? };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        event_out.set(hand_over(ckv_event::new(watch.next(timeout)?)));
        Ok(())
    })
}

/// A watch callback: `event` is borrowed for the call (do not free it). It runs on one of
/// the library's delivery threads, one event at a time per watch, in order, and may call
/// any coordkv function, including `ckv_watch_close` or `ckv_close` on its own or another
/// watch or store; such a close returns at once (see `ckv_watch_close`).
pub type ckv_watch_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const ckv_event)>;

struct CallbackTarget {
    callback: unsafe extern "C" fn(*mut c_void, *const ckv_event),
    user_data: *mut c_void,
}

// SAFETY: the caller of `ckv_watch_callback` promises its callback and user data may be
// used from the library's delivery threads (documented on the function).
unsafe impl Send for CallbackTarget {}

/// Like `ckv_watch_open`, but every event goes to `callback(user_data, event)` on a library
/// delivery thread instead of being polled. The last call is the CANCELED event when the
/// watch ends by itself (overflow, store closed, ...). After `ckv_watch_close` returns on a
/// thread that is not a delivery thread, the callback is not running and is never called
/// again, so `user_data` may then be freed. UNAVAILABLE when the delivery threads cannot
/// be started (then nothing was opened).
///
/// # Safety
/// As for `ckv_watch_open`; moreover `callback` and `user_data` may be used from the
/// library's delivery threads until the watch is closed (see above).
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_callback(
    store: *mut ckv_store,
    key_or_prefix: *const c_char,
    len: usize,
    options: *const ckv_watch_options,
    callback: ckv_watch_fn,
    user_data: *mut c_void,
    watch_out: *mut *mut ckv_watch,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    let open = |store: &Store, target: &str, options| {
        let c = CallbackTarget {
            callback: callback_arg(callback)?,
            user_data,
        };
        store.watch_callback(target, options, move |event| {
            let c = &c;
            let event = ckv_event::new(event.clone());
            // SAFETY: the caller's function and user data, usable from delivery threads
            // (`# Safety`), called as `ckv_watch_fn` documents: `event` alive for the call.
            unsafe { (c.callback)(c.user_data, &event) };
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

/// Closes a watch: it is unregistered and a thread blocked in `ckv_watch_next` returns
/// CKV_CLOSED. NULL, an already closed handle and a value that is not a watch handle are
/// no-ops.
///
/// Callbacks: after `ckv_watch_close` returns on a thread that is not a delivery thread,
/// the callback is not running and is never called again (so `user_data` may be freed),
/// also when a callback closed the watch before. A close from inside a callback (any
/// watch's) returns at once and never waits: the closed watch's callback is not called
/// again after the current one returns. So two callbacks may close each other's watches.
#[no_mangle]
pub extern "C" fn ckv_watch_close(watch: *mut ckv_watch) {
    guard_value((), || WATCHES.close(watch))
}
