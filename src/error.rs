//! The one error vocabulary of coordkv.
//!
//! Every failure anywhere in the core becomes an [`Error`]: a [`ErrorKind`] that callers
//! branch on, a human message that says what went wrong and how to fix it, and — for
//! `Conflict` — the key's current revision so a CAS loop can retry without another read.
//! `src/ffi` maps `ErrorKind` one-to-one onto `ckv_status`, the Python binding onto one
//! exception class per kind, the Go binding onto one sentinel error per kind, so adding a
//! kind here is an ABI change: append only, never renumber.

use std::fmt;

/// What kind of failure happened. The discriminants are the `ckv_status` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorKind {
    /// The key has no live value (never written, deleted, purged or expired).
    NotFound = 1,
    /// A compare-and-swap lost: the key's revision was not the expected one.
    Conflict = 2,
    /// The caller passed something unusable: a bad key, NULL pointer, bad JSON, bad URL.
    InvalidArgument = 3,
    /// The operation did not complete within its deadline.
    Timeout = 4,
    /// The store or watch was closed (or inherited across `fork()`).
    Closed = 5,
    /// The backend cannot be reached or is not able to serve (no server, no JetStream).
    Unavailable = 6,
    /// Authentication failed.
    Unauthorized = 7,
    /// A size or count limit was hit: value too large, too many watchers, buffer overflow.
    Limit = 8,
    /// The backend (or its server version) cannot do this.
    Unsupported = 9,
    /// The operation was abandoned on purpose (by the caller's callback, or a watch ending).
    Canceled = 10,
    /// A bug or an unexpected condition inside coordkv (including a caught panic).
    Internal = 11,
    /// Authenticated, but not allowed to use this subject, stream or bucket.
    PermissionDenied = 12,
}

impl ErrorKind {
    /// Every kind, in code order; used by tests and the bindings' tables.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidArgument,
        ErrorKind::Timeout,
        ErrorKind::Closed,
        ErrorKind::Unavailable,
        ErrorKind::Unauthorized,
        ErrorKind::Limit,
        ErrorKind::Unsupported,
        ErrorKind::Canceled,
        ErrorKind::Internal,
        ErrorKind::PermissionDenied,
    ];

    /// The stable upper-case name used in messages and by the bindings.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::Limit => "LIMIT",
            ErrorKind::Unsupported => "UNSUPPORTED",
            ErrorKind::Canceled => "CANCELED",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        }
    }
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
