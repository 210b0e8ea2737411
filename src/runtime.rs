//! The one tokio runtime of the process, and fork detection.
//!
//! Every network backend runs its I/O here; blocking C calls `block_on` from the caller's
//! own thread, so no runtime worker is ever parked by a caller. The runtime is built on
//! first use with `COORDKV_WORKER_THREADS` workers (default 2), without tokio's `signal`
//! and `process` features whose handlers break Go hosts.
//!
//! After `fork()` the child has the parent's memory but none of its threads: the old
//! runtime is left alone (never dropped: its workers do not exist to be joined), a fresh
//! one is built on demand, and every handle opened before the fork sees a changed fork
//! generation and fails with `CLOSED` instead of waiting on a thread that is gone. Nothing
//! here holds a lock across `fork()`: the runtime lives in a `PerProcess` cell.

use crate::error::{Error, ErrorKind, Result};

use crate::per_process::PerProcess;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use tokio::runtime::{Builder, Handle, Runtime};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

/// The runtime of this process (a forked child builds its own).
static RUNTIME: PerProcess<Runtime> = PerProcess::new();

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The current fork generation: it changes in a child process after every `fork()`.
/// Handles record it when opened and compare it on every call.
pub fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: registering a plain extern "C" function that only touches an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
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
    let build = || {
        Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("coordkv-io")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the tokio runtime: {e}")))
    };
    // A runtime built by a thread that lost the race was never used: stop it without
    // waiting (this may run on a thread where blocking is not allowed).
    let runtime = RUNTIME.get_or_try_init(build, Runtime::shutdown_background)?;
    Ok(runtime.handle().clone())
}

/// Runs a future to completion from a non-runtime thread (a C caller, a delivery thread).
/// Called from inside a runtime worker it fails instead of deadlocking the worker.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    refuse_on_worker()?;
    Ok(handle()?.block_on(future))
}

/// Fails on a thread that is inside an async runtime: a blocking call there would stall
/// (or deadlock) the runtime it waits on.
pub fn refuse_on_worker() -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::internal(
            "a blocking coordkv call was made from inside an async runtime worker",
        ));
    }
    Ok(())
}
