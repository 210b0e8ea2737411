//! Store handles: open, close, the store's revision, and [`with_store`], the prologue
//! every call on a store shares (the panic guard, `err_out`, the handle looked up).
//! The key-value operations themselves are in `kv`.
//!
//! Every function here has the same `# Safety` contract, the header's conventions:
//! buffers are NULL (with length 0) or readable for their length during the call, and
//! each `*_out` pointer is NULL or valid for a write. Handles are not pointers: any value
//! is checked (see `handles`).

use super::args::{cstr_arg, error_out, required_out, Out};
use super::handles::{Closable, HandleTable, Kind};
use super::{ckv_error, ckv_status, guard, guard_value};
use crate::error::Result;
use crate::store::Store;
use std::ffi::c_char;
use std::sync::Arc;

/// An open store. Opaque; safe to use from many threads at once.
pub struct ckv_store {
    _opaque: [u8; 0],
}

static STORES: HandleTable<Store> = HandleTable::new("store", Kind::Store);

impl Closable for Store {
    fn close(&self) {
        Store::close(self)
    }
    fn when_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        Store::when_quiet(self, action)
    }
}

pub(crate) fn store_of(handle: *mut ckv_store) -> Result<Arc<Store>> {
    STORES.lookup(handle)
}

/// Open store handles, closing ones included (for tests: every handle accounted for).
pub(crate) fn open_stores() -> usize {
    STORES.live()
}

/// Opens a store by URL: `"mem://"` (in-process) or `"nats://host:port[,host:port...]"`.
/// On success `*store_out` receives a handle to close with `ckv_close`.
/// Errors: INVALID_ARGUMENT (NULL, bad URL), UNAVAILABLE, UNAUTHORIZED, ...
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_open(
    url: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: forwarded: `open_from`'s `# Safety` is this function's.
    unsafe { open_from((url, "url"), store_out, err_out, Store::open) }
}

/// Opens a store from a JSON config (NUL-terminated UTF-8); see the README for the
/// fields. Unknown fields and wrong types are INVALID_ARGUMENT.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_open_config(
    json: *const c_char,
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: forwarded: `open_from`'s `# Safety` is this function's.
    unsafe { open_from((json, "json config"), store_out, err_out, Store::open_json) }
}

/// Both ways to open: a C string in, a new store handle out.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `store_out` and `err_out` are NULL or
/// writable.
unsafe fn open_from(
    (text, what): (*const c_char, &str),
    store_out: *mut *mut ckv_store,
    err_out: *mut *mut ckv_error,
    open: impl FnOnce(&str) -> Result<Store>,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    guard(err_out, || {
        // SAFETY: `text` is a C string and `store_out` writable, as `# Safety` requires.
        let (text, store_out) =
            unsafe { (cstr_arg(text, what)?, required_out(store_out, "store_out")?) };
        STORES.publish(open(text)?, store_out)
    })
}

/// Closes a store and releases its resources. NULL, a handle already closed and a value
/// that is not a store handle are no-ops. Calls racing on other threads finish or fail
/// with CKV_CLOSED; any later use of the handle fails with CKV_CLOSED and never touches
/// freed memory. Every watch of the store ends with CKV_CANCEL_STORE_CLOSED.
///
/// Callbacks: on a thread that is not a delivery thread, when this returns no callback of
/// the store's watches is running and none is ever called again — also when the store
/// was already closed by a callback. Called from inside a callback it returns at once:
/// no callback is started after it, and callbacks already running finish on their own.
#[no_mangle]
pub extern "C" fn ckv_close(store: *mut ckv_store) {
    guard_value((), || STORES.close(store))
}

/// The prologue every store call shares: the panic guard, `err_out`, the handle looked up.
pub(crate) fn with_store(
    handle: *mut ckv_store,
    err_out: Out<'_, *mut ckv_error>,
    call: impl FnOnce(&Store) -> Result<()>,
) -> ckv_status {
    guard(err_out, || call(&*store_of(handle)?))
}

/// The store's latest revision (0 when nothing was ever written) into `*revision_out`.
///
/// # Safety
/// The header's conventions: each buffer readable for its length, each `*_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ckv_last_revision(
    store: *mut ckv_store,
    revision_out: *mut u64,
    err_out: *mut *mut ckv_error,
) -> ckv_status {
    // SAFETY: `err_out` is NULL or writable, as this function's `# Safety` requires.
    let err_out = unsafe { error_out(err_out) };
    with_store(store, err_out, |store| {
        // SAFETY: `revision_out` is writable, as `# Safety` requires.
        let revision_out = unsafe { required_out(revision_out, "revision_out")? };
        revision_out.set(store.last_revision()?);
        Ok(())
    })
}
