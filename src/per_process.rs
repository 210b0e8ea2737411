//! [`PerProcess`]: one value per process, built again in a forked child.
//!
//! `fork()` copies memory but not threads, and a lock another thread held at the fork
//! stays held for ever in the child. So the process-wide state that threads and locks hang
//! off (the tokio runtime, the delivery threads, the handle tables) lives in this cell,
//! keyed by the fork generation (see `runtime::fork_generation`): the first use in a
//! child builds a fresh value and publishes it with one compare-and-swap, never under a
//! lock. The value it replaces is left as it is and stays reachable: its threads do not
//! exist in the child, so it can be neither joined nor dropped, but its atomics can still
//! be read through [`PerProcess::generations`] (the handle tables do, to tell a handle
//! inherited from the parent from garbage). Nothing is ever freed: the cost is one value
//! per fork generation.

use crate::runtime::fork_generation;
use std::ops::Deref;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A value and the fork generation it was built in.
pub struct InProcess<T> {
    pub fork_generation: u64,
    value: T,
    /// The value this one replaced in a forked child.
    previous: *const InProcess<T>,
}

impl<T> Deref for InProcess<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

pub struct PerProcess<T> {
    current: AtomicPtr<InProcess<T>>,
}

// SAFETY: the cell only hands out shared references to leaked `InProcess<T>`s (never
// freed, never mutated after publication), which is sound across threads when T is
// Send + Sync.
unsafe impl<T: Send + Sync> Sync for PerProcess<T> {}
// SAFETY: as for Sync.
unsafe impl<T: Send + Sync> Send for PerProcess<T> {}

impl<T> PerProcess<T> {
    pub const fn new() -> Self {
        PerProcess {
            current: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's value. `make` builds it on first use in a process; when two threads
    /// race, the loser's value goes to `discard` unpublished.
    pub fn get_or_try_init<E>(
        &self,
        make: impl Fn() -> Result<T, E>,
        discard: impl Fn(T),
    ) -> Result<&InProcess<T>, E> {
        let fork_generation = fork_generation();
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: non-null pointers here come from Box::into_raw and are never freed.
            if let Some(built) = unsafe { current.as_ref() } {
                if built.fork_generation == fork_generation {
                    return Ok(built);
                }
            }
            let fresh = Box::into_raw(Box::new(InProcess {
                fork_generation,
                value: make()?,
                previous: current,
            }));
            match (self.current).compare_exchange(
                current,
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: just published; it lives for the rest of the process.
                Ok(_) => return Ok(unsafe { &*fresh }),
                // SAFETY: never published, so nobody else can see it.
                Err(_) => discard(unsafe { Box::from_raw(fresh) }.value),
            }
        }
    }

    /// This process's value, built by `make` on first use (see [`Self::get_or_try_init`]).
    pub fn get_or_init(&self, make: impl Fn() -> T) -> &InProcess<T> {
        let built = self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(make()), drop);
        match built {
            Ok(built) => built,
            Err(never) => match never {},
        }
    }

    /// Every value published so far, newest first: this process's (if built) and those of
    /// the processes it was forked from. Only their atomics may be read: a lock in an
    /// older value may be held by a thread that does not exist here.
    pub fn generations(&self) -> impl Iterator<Item = &InProcess<T>> {
        let mut next = self.current.load(Ordering::Acquire) as *const InProcess<T>;
        std::iter::from_fn(move || {
            // SAFETY: published values are leaked and never freed.
            let built = unsafe { next.as_ref() }?;
            next = built.previous;
            Some(built)
        })
    }
}
