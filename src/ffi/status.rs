//! `ckv_status`: the core's `ErrorKind` as C sees it, and the names of every code C gets.
//!
//! The vocabulary is declared once, in `src/error.rs` (`error_kinds!`). The `CKV_*`
//! constants below are written out because cbindgen reads source, not macro output, and
//! C users need them as `#define`s; `check_status_constants!` (run over that declaration)
//! fails the build when a constant is missing or its value differs from the core's code.
//! The names handed to C and to the bindings (`ckv_status_name`, `ckv_event_kind_name`,
//! `ckv_cancel_reason_name`, `ckv_operation_name`) are the constants without `CKV_` and
//! their group prefix, so a binding never retypes them.

use super::guard_value;
use crate::error::{for_each_error_kind, ErrorKind};
use std::ffi::{c_char, CStr};

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
/// The lease has ended (expired or revoked) or never existed.
pub const CKV_LEASE_NOT_FOUND: ckv_status = 13;

/// Compile-time proof that each kind's C constant exists with the kind's code.
macro_rules! check_status_constants {
    ($(($variant:ident, $code:literal, $c_name:ident))*) => {
        const _: () = {
            $(assert!($c_name == $code && ErrorKind::$variant as ckv_status == $code);)*
        };
    };
}
for_each_error_kind!(check_status_constants);

pub(crate) fn status_of(kind: ErrorKind) -> ckv_status {
    kind as ckv_status
}

pub(crate) fn kind_of(status: ckv_status) -> Option<ErrorKind> {
    ErrorKind::from_code(status)
}

/// What every `*_name` function returns for a code it does not know.
pub(crate) const UNKNOWN: &CStr = c"UNKNOWN";

/// A static NUL-terminated name as C receives it.
pub(crate) fn c_name(name_with_nul: &'static str) -> *const c_char {
    CStr::from_bytes_with_nul(name_with_nul.as_bytes()).map_or(UNKNOWN.as_ptr(), CStr::as_ptr)
}

/// The name of a status code ("OK", "NOT_FOUND", ...; "UNKNOWN" for anything else).
/// A static string: never free it.
#[no_mangle]
pub extern "C" fn ckv_status_name(status: ckv_status) -> *const c_char {
    guard_value(UNKNOWN.as_ptr(), || match kind_of(status) {
        Some(kind) => c_name(kind.name_with_nul()),
        None if status == CKV_OK => c"OK".as_ptr(),
        None => UNKNOWN.as_ptr(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(status: ckv_status) -> &'static str {
        // SAFETY: `ckv_status_name` always returns a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(ckv_status_name(status)) };
        name.to_str().unwrap()
    }

    #[test]
    fn statuses_map_one_to_one_onto_error_kinds() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind_of(status_of(kind)), Some(kind));
            assert_eq!(name_of(status_of(kind)), kind.name());
        }
        assert_eq!(kind_of(CKV_OK), None);
        assert_eq!(name_of(CKV_OK), "OK");
        for unknown in [-1, 14, i32::MAX, i32::MIN] {
            assert_eq!(name_of(unknown), "UNKNOWN");
        }
    }
}
