//! Watch handles and events: `ckv_watch_open` (poll with `ckv_watch_next`) and
//! `ckv_watch_callback` (events pushed to a C function on the library's delivery threads).
//!
//! A watch handle lives in a generation-checked table like stores (its kind is part of the
//! handle, so one is never taken for the other), so a closed or stale handle fails with
//! CKV_CLOSED. A watch closed from inside a callback keeps its slot, closing, until that
//! callback returns, so the owner's close can still find it and wait. Events handed to `ckv_watch_next` are owned by the
//! caller (`ckv_event_free`); events handed to a callback are borrowed for that call.
//! The guarantees (order, overflow, quiescing on close) are the core's; this file only
//! translates.

use super::entry::ckv_entry;
use super::handles::{HandleTable, Kind};
use super::store::{ckv_store, store_of};
use super::{ckv_error, ckv_status, guard, guard_value, out_arg, text_arg};
use crate::error::{Error, Result};
use crate::watch::{CancelReason, Event, EventKind, Watch, WatchOptions, DEFAULT_BUFFER_SIZE};
use std::ffi::{c_char, c_void, CString};
use std::time::Duration;

/// An open watch. Opaque; safe to use from many threads. Close it with `ckv_watch_close`.
pub struct ckv_watch {
    _opaque: [u8; 0],
}

static WATCHES: HandleTable<Watch> = HandleTable::new("watch", Kind::Watch);

/// What an event is: one of the `CKV_EVENT_*` codes (returned by `ckv_event_kind`).
pub type ckv_event_type = i32;
/// A value was written (also: a current value sent by a snapshot, before SYNCED).
pub const CKV_EVENT_PUT: ckv_event_type = 1;
/// The key was deleted.
pub const CKV_EVENT_DELETE: ckv_event_type = 2;
/// The key's history was purged.
pub const CKV_EVENT_PURGE: ckv_event_type = 3;
/// The key's TTL ran out.
pub const CKV_EVENT_EXPIRED: ckv_event_type = 4;
/// The snapshot is complete: every key that matched at the event's revision was delivered.
pub const CKV_EVENT_SYNCED: ckv_event_type = 5;
/// A bookmark: every matching event up to the event's revision was delivered.
pub const CKV_EVENT_PROGRESS: ckv_event_type = 6;
/// The watch ended (see `ckv_event_cancel_reason`); the event's revision is the last one
/// it is complete through: a new watch from revision + 1 continues without a gap.
pub const CKV_EVENT_CANCELED: ckv_event_type = 7;

/// Why a watch ended: one of the `CKV_CANCEL_*` codes (0 for events that are not CANCELED).
pub type ckv_cancel_reason = i32;
/// The watch was closed by its owner.
pub const CKV_CANCEL_CLOSED: ckv_cancel_reason = 1;
/// The watcher did not keep up and its buffer filled.
pub const CKV_CANCEL_OVERFLOW: ckv_cancel_reason = 2;
/// The backend could not keep serving this watcher.
pub const CKV_CANCEL_WATCHER_LIMIT: ckv_cancel_reason = 3;
/// The start revision is older than the retained history can prove complete.
pub const CKV_CANCEL_HISTORY_LOST: ckv_cancel_reason = 4;
/// The store was closed.
pub const CKV_CANCEL_STORE_CLOSED: ckv_cancel_reason = 5;

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
}

/// Fills `options` with the defaults: an exact-key watch from now on, no snapshot, no
/// previous values, deletes included, a 1024-event buffer, no progress. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_options_init(options: *mut ckv_watch_options) {
    guard_value((), || {
        if let Some(options) = unsafe { options.as_mut() } {
            *options = ckv_watch_options {
                prefix: false,
                start_revision: 0,
                snapshot: false,
                prev_value: false,
                ignore_deletes: false,
                buffer_size: DEFAULT_BUFFER_SIZE,
                progress_interval_ms: 0,
                resync: false,
            };
        }
    })
}

pub(super) fn core_options(options: *const ckv_watch_options) -> WatchOptions {
    // SAFETY: NULL or a valid options struct, by contract.
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
        },
    }
}

pub(super) fn publish(watch: Watch, watch_out: *mut *mut ckv_watch) -> Result<()> {
    let handle = WATCHES.insert(std::sync::Arc::new(watch))?;
    // SAFETY: checked non-NULL by the caller of `publish`.
    unsafe { *watch_out = handle as *mut ckv_watch };
    Ok(())
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
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_open(
    store: *mut ckv_store,
    key_or_prefix: *const c_char,
    len: usize,
    options: *const ckv_watch_options,
    watch_out: *mut *mut ckv_watch,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let store = store_of(store)?;
        let target = unsafe { text_arg(key_or_prefix, len, "key_or_prefix")? };
        out_arg(watch_out, "watch_out")?;
        let watch = store.watch(target, core_options(options))?;
        publish(watch, watch_out)
    })
}

/// Takes the next event of a polled watch into `*event_out` (free with `ckv_event_free`).
/// `timeout_ms`: 0 returns at once, negative waits forever. Returns CKV_OK with an event,
/// CKV_TIMEOUT when none came in time, CKV_CLOSED after the final CKV_EVENT_CANCELED was
/// taken or once the watch is closed; INVALID_ARGUMENT for a callback watch.
#[no_mangle]
pub unsafe extern "C" fn ckv_watch_next(
    watch: *mut ckv_watch,
    timeout_ms: i64,
    event_out: *mut *mut ckv_event,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    guard(err_out, || {
        let watch = WATCHES.get(watch as usize)?;
        out_arg(event_out, "event_out")?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let event = watch.next(timeout)?;
        unsafe { *event_out = Box::into_raw(Box::new(ckv_event::new(event))) };
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
    guard(err_out, || {
        let store = store_of(store)?;
        let target = unsafe { text_arg(key_or_prefix, len, "key_or_prefix")? };
        out_arg(watch_out, "watch_out")?;
        let callback = callback.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let c = CallbackTarget {
            callback,
            user_data,
        };
        let watch = store.watch_callback(target, core_options(options), move |event| {
            let c = &c;
            let event = ckv_event::new(event.clone());
            // SAFETY: a C function pointer and its user data, as given by the caller.
            unsafe { (c.callback)(c.user_data, &event) };
        })?;
        publish(watch, watch_out)
    })
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
pub unsafe extern "C" fn ckv_watch_close(watch: *mut ckv_watch) {
    guard_value((), || {
        let handle = watch as usize;
        if let Some(watch) = WATCHES.begin_close(handle) {
            watch.close();
            // The slot stays (closing) until the callback returns, so a later close from
            // another thread still finds the watch and waits for it.
            watch.when_quiet(Box::new(move || WATCHES.retire(handle)));
        }
    })
}

/// One watch event. Read it with the `ckv_event_*` accessors.
pub struct ckv_event {
    event: Event,
    entry: Option<ckv_entry>,
    prev: Option<ckv_entry>,
    message: CString,
}

impl ckv_event {
    fn new(mut event: Event) -> ckv_event {
        let message = CString::new(std::mem::take(&mut event.message).replace('\0', "\\0"))
            .unwrap_or_default();
        ckv_event {
            entry: event.entry.take().map(ckv_entry::new),
            prev: event.prev.take().map(ckv_entry::new),
            event,
            message,
        }
    }
}

/// The event's kind (`CKV_EVENT_*`); 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_kind(event: *const ckv_event) -> ckv_event_type {
    guard_value(0, || {
        unsafe { event.as_ref() }.map_or(0, |e| e.event.kind as ckv_event_type)
    })
}

/// The event's revision: the entry's for data events, the bookmark for SYNCED and
/// PROGRESS, the last revision the watch is complete through for CANCELED. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_revision(event: *const ckv_event) -> u64 {
    guard_value(0, || {
        unsafe { event.as_ref() }.map_or(0, |e| e.event.revision)
    })
}

/// The written entry of a data event, borrowed from the event (do not free it); NULL for
/// SYNCED, PROGRESS and CANCELED, and for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_entry(event: *const ckv_event) -> *const ckv_entry {
    guard_value(std::ptr::null(), || {
        unsafe { event.as_ref() }
            .and_then(|e| e.entry.as_ref())
            .map_or(std::ptr::null(), |e| e as *const ckv_entry)
    })
}

/// The key's previous live value, when the watch asked for `prev_value` and the store
/// still retains it; borrowed from the event. NULL otherwise.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_prev_entry(event: *const ckv_event) -> *const ckv_entry {
    guard_value(std::ptr::null(), || {
        unsafe { event.as_ref() }
            .and_then(|e| e.prev.as_ref())
            .map_or(std::ptr::null(), |e| e as *const ckv_entry)
    })
}

/// Why the watch ended (`CKV_CANCEL_*`) for a CANCELED event; 0 otherwise and for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_cancel_reason(event: *const ckv_event) -> ckv_cancel_reason {
    guard_value(0, || {
        unsafe { event.as_ref() }
            .and_then(|e| e.event.cancel_reason)
            .map_or(0, |r: CancelReason| r as ckv_cancel_reason)
    })
}

/// Whether the event belongs to the watch's catch-up — a snapshot's values and its
/// SYNCED, or the retained events a `start_revision` replays — rather than to live
/// traffic. The buffer bound counts live events only. False for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_is_catch_up(event: *const ckv_event) -> bool {
    guard_value(false, || {
        unsafe { event.as_ref() }.is_some_and(|e| e.event.catch_up)
    })
}

/// Whether the event is part of a resync (a `resync` watch that may have missed events):
/// the values of a fresh snapshot and its SYNCED, which replace what the consumer had
/// instead of adding to it. False for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_is_resync(event: *const ckv_event) -> bool {
    guard_value(false, || {
        unsafe { event.as_ref() }.is_some_and(|e| e.event.resync)
    })
}

/// A human explanation for a CANCELED event, NUL-terminated, borrowed from the event;
/// an empty string for other events and for NULL.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_message(event: *const ckv_event) -> *const c_char {
    guard_value(c"".as_ptr(), || {
        unsafe { event.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// Frees an event returned by `ckv_watch_next`. NULL is a no-op. Never free an event
/// received by a callback.
#[no_mangle]
pub unsafe extern "C" fn ckv_event_free(event: *mut ckv_event) {
    if !event.is_null() {
        // SAFETY: `event` came from `ckv_watch_next` and is freed once, by contract.
        guard_value((), || drop(unsafe { Box::from_raw(event) }));
    }
}

const _: () = {
    // The C codes are the core's discriminants; a renumbering there must fail here.
    assert!(EventKind::Canceled as i32 == CKV_EVENT_CANCELED);
    assert!(EventKind::Put as i32 == CKV_EVENT_PUT);
    assert!(CancelReason::StoreClosed as i32 == CKV_CANCEL_STORE_CLOSED);
    assert!(CancelReason::Closed as i32 == CKV_CANCEL_CLOSED);
};
