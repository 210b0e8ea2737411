//! The one tokio runtime of the process, and fork detection.
//!
//! Every network backend runs its I/O here; blocking C calls `block_on` from the caller's
//! own thread, so no runtime worker is ever parked by a caller. The runtime is built on
//! first use with `COORDKV_WORKER_THREADS` workers (default 2), without tokio's `signal`
//! and `process` features whose handlers break Go hosts.
//!
//! After `fork()` the child has the parent's memory but none of its threads: the old
//! runtime is leaked (never dropped, its workers do not exist), a fresh one is built on
//! demand, and every handle opened before the fork sees a changed fork generation and
//! fails with `CLOSED` instead of waiting on a thread that is gone.

use crate::error::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use tokio::runtime::{Builder, Handle, Runtime};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();
static RUNTIME: Mutex<Option<(u64, &'static Runtime)>> = Mutex::new(None);

// The runtime slot is locked across fork() so the child never inherits it held by a
// thread that does not exist there.
extern "C" fn before_fork() {
    std::mem::forget(RUNTIME.lock());
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: locked by `before_fork` on this thread.
    unsafe { RUNTIME.force_unlock() };
}

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    // SAFETY: locked by `before_fork` on the parent thread this child continues.
    unsafe { RUNTIME.force_unlock() };
}

/// The current fork generation: it changes in a child process after every `fork()`.
/// Handles record it when opened and compare it on every call.
pub fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: plain extern "C" handlers that only touch an atomic and our own mutex.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            );
        }
    });
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Fails with `CLOSED` when `generation` was recorded before a `fork()` into this process.
pub fn check_same_process(generation: u64, what: &str) -> Result<()> {
    if generation == FORK_GENERATION.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Closed,
            format!("{what} was opened before fork(); open a new one in this process"),
        ))
    }
}

fn worker_threads() -> usize {
    std::env::var("COORDKV_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0 && n <= 256)
        .unwrap_or(2)
}

/// The runtime's handle, building the runtime on first use (and again after a fork).
pub fn handle() -> Result<Handle> {
    let generation = fork_generation();
    let mut slot = RUNTIME.lock();
    if let Some((built_in, rt)) = *slot {
        if built_in == generation {
            return Ok(rt.handle().clone());
        }
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("coordkv-io")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the tokio runtime: {e}")))?;
    // Never dropped: after a fork its worker threads would not exist to be joined.
    let rt: &'static Runtime = Box::leak(Box::new(rt));
    *slot = Some((generation, rt));
    Ok(rt.handle().clone())
}

/// Runs a future to completion from a non-runtime thread (a C caller, a delivery thread).
/// Called from inside a runtime worker it fails instead of deadlocking the worker.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    if Handle::try_current().is_ok() {
        return Err(Error::internal(
            "a blocking coordkv call was made from inside an async runtime worker",
        ));
    }
    Ok(handle()?.block_on(future))
}
