//! Watch events as C reads them: `ckv_event` and its accessors, the `CKV_EVENT_*` and
//! `CKV_CANCEL_*` codes and their names. An event from `ckv_watch_next` is owned by the
//! caller (`ckv_event_free`); one handed to a callback is borrowed for that call.

use super::args::{free_handed, read_or};
use super::entry::ckv_entry;
use super::guard_value;
use super::status::UNKNOWN;
use crate::watch::{CancelReason, Event, EventKind};
use std::ffi::{c_char, CStr, CString};

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

/// The name of an event kind: its `CKV_EVENT_*` constant without the prefix ("PUT", ...,
/// "CANCELED"; "UNKNOWN" for anything else). A static string: never free it.
#[no_mangle]
pub extern "C" fn ckv_event_kind_name(kind: ckv_event_type) -> *const c_char {
    guard_value(UNKNOWN.as_ptr(), || event_kind_name(kind).as_ptr())
}

fn event_kind_name(kind: ckv_event_type) -> &'static CStr {
    match kind {
        CKV_EVENT_PUT => c"PUT",
        CKV_EVENT_DELETE => c"DELETE",
        CKV_EVENT_PURGE => c"PURGE",
        CKV_EVENT_EXPIRED => c"EXPIRED",
        CKV_EVENT_SYNCED => c"SYNCED",
        CKV_EVENT_PROGRESS => c"PROGRESS",
        CKV_EVENT_CANCELED => c"CANCELED",
        _ => UNKNOWN,
    }
}

/// The name of a cancel reason: its `CKV_CANCEL_*` constant without the prefix
/// ("CLOSED", "OVERFLOW", ...; "UNKNOWN" for anything else, 0 included). A static
/// string: never free it.
#[no_mangle]
pub extern "C" fn ckv_cancel_reason_name(reason: ckv_cancel_reason) -> *const c_char {
    guard_value(UNKNOWN.as_ptr(), || cancel_reason_name(reason).as_ptr())
}

fn cancel_reason_name(reason: ckv_cancel_reason) -> &'static CStr {
    match reason {
        CKV_CANCEL_CLOSED => c"CLOSED",
        CKV_CANCEL_OVERFLOW => c"OVERFLOW",
        CKV_CANCEL_WATCHER_LIMIT => c"WATCHER_LIMIT",
        CKV_CANCEL_HISTORY_LOST => c"HISTORY_LOST",
        CKV_CANCEL_STORE_CLOSED => c"STORE_CLOSED",
        _ => UNKNOWN,
    }
}

/// One watch event. Read it with the `ckv_event_*` accessors.
pub struct ckv_event {
    event: Event,
    entry: Option<ckv_entry>,
    prev: Option<ckv_entry>,
    message: CString,
}

impl ckv_event {
    pub(crate) fn new(mut event: Event) -> ckv_event {
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
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_kind(event: *const ckv_event) -> ckv_event_type {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe { read_or(event, 0, |e| e.event.kind as ckv_event_type) }
}

/// The event's revision: the entry's for data events, the bookmark for SYNCED and
/// PROGRESS, the last revision the watch is complete through for CANCELED. 0 for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_revision(event: *const ckv_event) -> u64 {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe { read_or(event, 0, |e| e.event.revision) }
}

/// The written entry of a data event, borrowed from the event (do not free it); NULL for
/// SYNCED, PROGRESS and CANCELED, and for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_entry(event: *const ckv_event) -> *const ckv_entry {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe {
        read_or(event, std::ptr::null(), |e| {
            e.entry
                .as_ref()
                .map_or(std::ptr::null(), |e| e as *const ckv_entry)
        })
    }
}

/// The key's previous live value, when the watch asked for `prev_value` and the store
/// still retains it; borrowed from the event. NULL otherwise.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_prev_entry(event: *const ckv_event) -> *const ckv_entry {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe {
        read_or(event, std::ptr::null(), |e| {
            e.prev
                .as_ref()
                .map_or(std::ptr::null(), |e| e as *const ckv_entry)
        })
    }
}

/// Why the watch ended (`CKV_CANCEL_*`) for a CANCELED event; 0 otherwise and for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_cancel_reason(event: *const ckv_event) -> ckv_cancel_reason {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe {
        read_or(event, 0, |e| {
            e.event
                .cancel_reason
                .map_or(0, |r: CancelReason| r as ckv_cancel_reason)
        })
    }
}

/// Whether the event belongs to the watch's catch-up — a snapshot's values and its
/// SYNCED, or the retained events a `start_revision` replays — rather than to live
/// traffic. The buffer bound counts live events only. False for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_is_catch_up(event: *const ckv_event) -> bool {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe { read_or(event, false, |e| e.event.catch_up) }
}

/// Whether the event is part of a resync (a `resync` watch that may have missed events):
/// the values of a fresh snapshot and its SYNCED, which replace what the consumer had
/// instead of adding to it. False for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_is_resync(event: *const ckv_event) -> bool {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe { read_or(event, false, |e| e.event.resync) }
}

/// A human explanation for a CANCELED event, NUL-terminated, borrowed from the event;
/// an empty string for other events and for NULL.
///
/// # Safety
/// `event` is NULL or a live event (owned, or borrowed by a callback).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_message(event: *const ckv_event) -> *const c_char {
    // SAFETY: NULL or a live event, as this function's `# Safety` requires.
    unsafe { read_or(event, c"".as_ptr(), |e| e.message.as_ptr()) }
}

/// Frees an event returned by `ckv_watch_next`. NULL is a no-op. Never free an event
/// received by a callback.
///
/// # Safety
/// `event` is NULL or an event from `ckv_watch_next`, freed only once and not used after
/// (nor the entries borrowed from it).
#[no_mangle]
pub unsafe extern "C" fn ckv_event_free(event: *mut ckv_event) {
    // SAFETY: handed over by `ckv_watch_next`, freed once, as `# Safety` requires.
    unsafe { free_handed(event) }
}

const _: () = {
    // The C codes are the core's discriminants; a renumbering there must fail here.
    assert!(EventKind::Put as i32 == CKV_EVENT_PUT);
    assert!(EventKind::Delete as i32 == CKV_EVENT_DELETE);
    assert!(EventKind::Purge as i32 == CKV_EVENT_PURGE);
    assert!(EventKind::Expired as i32 == CKV_EVENT_EXPIRED);
    assert!(EventKind::Synced as i32 == CKV_EVENT_SYNCED);
    assert!(EventKind::Progress as i32 == CKV_EVENT_PROGRESS);
    assert!(EventKind::Canceled as i32 == CKV_EVENT_CANCELED);
    assert!(CancelReason::Closed as i32 == CKV_CANCEL_CLOSED);
    assert!(CancelReason::Overflow as i32 == CKV_CANCEL_OVERFLOW);
    assert!(CancelReason::WatcherLimit as i32 == CKV_CANCEL_WATCHER_LIMIT);
    assert!(CancelReason::HistoryLost as i32 == CKV_CANCEL_HISTORY_LOST);
    assert!(CancelReason::StoreClosed as i32 == CKV_CANCEL_STORE_CLOSED);
};
