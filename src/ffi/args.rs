//! Arguments in, results out: every raw-pointer conversion of the C ABI in one place.
//!
//! Each helper does one conversion and states, in its `# Safety` section, what the C
//! caller must have promised for it to be sound; an entry point calls it in an `unsafe`
//! block whose `SAFETY:` comment points at its own `# Safety` section, which forwards the
//! same promise to C. So an entry point reads: check the arguments with these helpers,
//! call the safe core, hand the result back with [`Out::set`] or [`hand_over`].
//!
//! Ownership crosses in one direction only: what the library allocates for the caller
//! (entries, lists, events, errors) is boxed by [`hand_over`] and comes back to exactly
//! one place, [`free_handed`], through the matching `_free` function.

use crate::error::{Error, Result};
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// `(ptr, len)` as a byte slice; NULL is allowed only with `len == 0`.
///
/// # Safety
/// When `ptr` is not NULL it points to `len` bytes that stay readable and unchanged for
/// `'a` (in practice: the call that received them).
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length {len} is too large")));
    }
    // SAFETY: not NULL, at most isize::MAX bytes, and readable for `'a` by this
    // function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `(ptr, len)` as UTF-8 text (a key or prefix; the core validates its shape). The length
/// is checked first, so an over-long length is refused before any byte is read.
///
/// # Safety
/// As for [`bytes_arg`].
pub(crate) unsafe fn text_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str> {
    if len > crate::key::MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "{what} is {len} bytes; the limit is {} bytes",
            crate::key::MAX_KEY_LEN
        )));
    }
    // SAFETY: forwarded: this function has the same contract as `bytes_arg`.
    let bytes = unsafe { bytes_arg(ptr as *const u8, len, what)? };
    crate::key::utf8(bytes, what)
}

/// A NUL-terminated UTF-8 string argument that must not be NULL.
///
/// # Safety
/// When `ptr` is not NULL it points to a NUL-terminated string readable for `'a`.
pub(crate) unsafe fn cstr_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated and readable by this function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    crate::key::utf8(bytes, what)
}

/// A C callback that must not be NULL (`ckv_rmw_fn`, `ckv_watch_fn`).
pub(crate) fn callback_arg<F>(callback: Option<F>) -> Result<F> {
    callback.ok_or_else(|| Error::invalid("callback is NULL"))
}

/// An output parameter, checked when the call starts and written at most once, when it
/// succeeds (the header promises that nothing is written on failure).
pub(crate) struct Out<'a, T> {
    /// `None`: an optional output the caller passed as NULL.
    ptr: Option<NonNull<T>>,
    _caller: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Whether the caller passed this output (an optional one may be NULL).
    pub(crate) fn is_wanted(&self) -> bool {
        self.ptr.is_some()
    }

    /// Writes `value`; dropped without a write when the output was optional and NULL.
    pub(crate) fn set(self, value: T) {
        self.set_with(|| value)
    }

    /// Writes `make()`, calling it only when the caller wants the output: for values that
    /// own memory (such as a handed-over `ckv_error`), which a NULL output would leak.
    pub(crate) fn set_with(self, make: impl FnOnce() -> T) {
        if let Some(ptr) = self.ptr {
            // SAFETY: `required_out` and `optional_out` only wrap pointers their callers
            // vouched for as valid for a write of `T`; `set_with` consumes `self`, so once.
            unsafe { ptr.as_ptr().write(make()) };
        }
    }
}

/// An output parameter the caller must pass; NULL is INVALID_ARGUMENT.
///
/// # Safety
/// When `ptr` is not NULL it is valid for a write of `T` (aligned, writable) for `'a`.
pub(crate) unsafe fn required_out<'a, T>(ptr: *mut T, what: &str) -> Result<Out<'a, T>> {
    match NonNull::new(ptr) {
        Some(ptr) => Ok(Out {
            ptr: Some(ptr),
            _caller: PhantomData,
        }),
        None => Err(Error::invalid(format!("{what} is NULL"))),
    }
}

/// An output parameter the caller may pass as NULL, meaning "not wanted".
///
/// # Safety
/// As for [`required_out`].
pub(crate) unsafe fn optional_out<'a, T>(ptr: *mut T) -> Out<'a, T> {
    Out {
        ptr: NonNull::new(ptr),
        _caller: PhantomData,
    }
}

/// The optional `ckv_error **err_out` of a fallible function, for [`super::guard`].
///
/// # Safety
/// As for [`required_out`]: `ptr` is NULL or valid for a write of a `ckv_error *`.
pub(crate) unsafe fn error_out<'a>(
    ptr: *mut *mut super::ckv_error,
) -> Out<'a, *mut super::ckv_error> {
    // SAFETY: forwarded: this function has the same contract as `optional_out`.
    unsafe { optional_out(ptr) }
}

/// No `err_out`: for the few fallible functions that report through their status only.
pub(crate) fn no_error_out<'a>() -> Out<'a, *mut super::ckv_error> {
    Out {
        ptr: None,
        _caller: PhantomData,
    }
}

/// `read(object)` for the object behind `ptr`, or `fallback` when `ptr` is NULL or the
/// read panics: the whole body of an accessor such as `ckv_entry_revision`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that nobody mutates during the call.
pub(crate) unsafe fn read_or<T, R: Copy>(
    ptr: *const T,
    fallback: R,
    read: impl FnOnce(&T) -> R,
) -> R {
    // SAFETY: NULL or a live, unaliased-for-writes `T`, by this function's contract.
    let object = unsafe { ptr.as_ref() };
    super::guard_value(fallback, || object.map_or(fallback, read))
}

/// Hands `value` to C: the one way a library-allocated result leaves Rust. The caller
/// frees it with the matching `_free` function, which calls [`free_handed`].
pub(crate) fn hand_over<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops what [`hand_over`] gave C: the body of every `_free` function.
/// NULL is a no-op; a panic in a destructor is caught.
///
/// # Safety
/// `ptr` is NULL or was returned by [`hand_over`] for this same `T`, and is not used
/// (or freed) again.
pub(crate) unsafe fn free_handed<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    super::guard_value((), || {
        // SAFETY: a `Box<T>` leaked by `hand_over` and given back once, by contract.
        drop(unsafe { Box::from_raw(ptr) })
    })
}
