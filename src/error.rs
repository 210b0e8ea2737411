//! The one error vocabulary of coordkv.
//!
//! Every failure anywhere in the core becomes an [`Error`]: a [`ErrorKind`] that callers
//! branch on, a human message that says what went wrong and how to fix it, and — for
//! `Conflict` — the key's current revision so a CAS loop can retry without another read.
//! `src/ffi` maps `ErrorKind` one-to-one onto `ckv_status`, the Python binding onto one
//! exception class per kind, the Go binding onto one sentinel error per kind, so adding a
//! kind here is an ABI change: append only, never renumber.
//!
//! The kinds are declared once, in the `error_kinds!` table below: variant, code, C
//! constant and doc. The `ckv_status` names (`ckv_status_name`, the bindings' tables) come
//! from it, and the "NAME: message" text is built in one place, `Error`'s `Display`.

use std::fmt;

/// Declares the error vocabulary once. Each row is a kind's doc, its variant, its
/// `ckv_status` code and the C constant that carries the code; from the rows come
/// [`ErrorKind`], [`ErrorKind::ALL`], [`ErrorKind::name`] (the constant without `CKV_`)
/// and [`ErrorKind::from_code`]. `src/ffi` passes its own macro to
/// [`for_each_error_kind`] to check, at compile time, that every `CKV_*` constant of
/// the header has the code declared here (cbindgen reads source, not macro output, so
/// the header's `#define`s stay written out there).
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal => $c_name:ident,)*) => {
        /// What kind of failure happened. The discriminants are the `ckv_status` codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $variant = $code,)*
        }

        impl ErrorKind {
            /// Every kind, in code order; used by tests and the bindings' tables.
            pub const ALL: [ErrorKind; [$($code),*].len()] = [$(ErrorKind::$variant),*];

            /// The stable upper-case name used in messages and by the bindings: the C
            /// constant's name without its `CKV_` prefix ("NOT_FOUND", ...).
            pub fn name(self) -> &'static str {
                let with_nul = self.name_with_nul();
                &with_nul[..with_nul.len() - 1]
            }

            /// [`ErrorKind::name`] followed by a NUL, so the C ABI hands it out as is.
            pub fn name_with_nul(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => {
                        &concat!(stringify!($c_name), "\0")["CKV_".len()..]
                    })*
                }
            }

            /// The kind whose `ckv_status` code is `code`; `None` for 0 (OK) and unknown codes.
            pub fn from_code(code: i32) -> Option<ErrorKind> {
                match code {
                    $($code => Some(ErrorKind::$variant),)*
                    _ => None,
                }
            }
        }

        /// Calls `$callback!` with `(variant, code, C constant)` rows, one per kind.
        macro_rules! for_each_error_kind {
            ($callback:ident) => {
                $callback! { $(($variant, $code, $c_name))* }
            };
        }
        pub(crate) use for_each_error_kind;
    };
}

error_kinds! {
    /// The key has no live value (never written, deleted, purged or expired).
    NotFound = 1 => CKV_NOT_FOUND,
    /// A compare-and-swap lost: the key's revision was not the expected one.
    Conflict = 2 => CKV_CONFLICT,
    /// The caller passed something unusable: a bad key, NULL pointer, bad JSON, bad URL.
    InvalidArgument = 3 => CKV_INVALID_ARGUMENT,
    /// The operation did not complete within its deadline.
    Timeout = 4 => CKV_TIMEOUT,
    /// The store or watch was closed (or inherited across `fork()`).
    Closed = 5 => CKV_CLOSED,
    /// The backend cannot be reached or is not able to serve (no server, no JetStream).
    Unavailable = 6 => CKV_UNAVAILABLE,
    /// Authentication failed.
    Unauthorized = 7 => CKV_UNAUTHORIZED,
    /// A size or count limit was hit: value too large, too many watchers, buffer overflow.
    Limit = 8 => CKV_LIMIT,
    /// The backend (or its server version) cannot do this.
    Unsupported = 9 => CKV_UNSUPPORTED,
    /// The operation was abandoned on purpose (by the caller's callback, or a watch ending).
    Canceled = 10 => CKV_CANCELED,
    /// A bug or an unexpected condition inside coordkv (including a caught panic).
    Internal = 11 => CKV_INTERNAL,
    /// Authenticated, but not allowed to use this subject, stream or bucket.
    PermissionDenied = 12 => CKV_PERMISSION_DENIED,
    /// The lease has ended (expired or revoked), or never existed.
    LeaseNotFound = 13 => CKV_LEASE_NOT_FOUND,
}

/// A failure: its kind, a message for humans, and the current revision on `Conflict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    current_revision: u64,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            current_revision: 0,
        }
    }

    /// A CAS failure; `current_revision` is the key's latest revision (0 if it never existed).
    pub fn conflict(current_revision: u64, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Conflict,
            message: message.into(),
            current_revision,
        }
    }

    pub fn not_found(key: &str) -> Self {
        Error::new(ErrorKind::NotFound, format!("key {key:?} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn closed(what: &str) -> Self {
        Error::new(ErrorKind::Closed, format!("{what} is closed"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// For `Conflict`: the key's revision at the time of the failed write; otherwise 0.
    pub fn current_revision(&self) -> u64 {
        self.current_revision
    }

    /// Same kind and revision, with context put in front of the message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest piece of caller input a message repeats, in characters.
pub const SHOWN_CHARS: usize = 64;

/// Caller input as a message shows it: quoted, and cut after [`SHOWN_CHARS`] characters
/// (saying how long it was), so a huge input never makes a huge message.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shown_input_is_bounded() {
        assert_eq!(super::shown("/a"), "\"/a\"");
        let long = "x".repeat(10_000_000);
        let s = super::shown(&long);
        assert!(s.len() < 100 && s.ends_with("(10000000 bytes)"), "{s}");
    }
}
