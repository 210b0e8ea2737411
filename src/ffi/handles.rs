//! Opaque handles for long-lived objects (stores, watches).
//!
//! A handle is not a pointer to the object: it encodes a slot index, the slot's generation
//! and the process's fork generation, and every call looks it up. Closing empties the slot
//! and bumps its generation, so a stale or double-closed handle is refused with
//! `CKV_CLOSED` and no freed memory is ever read. A lookup clones an `Arc`, so an object
//! closed while another thread is inside a call stays alive until that call returns.
//! Bit 63 is always set: a handle lies in the kernel half of the address space and never
//! aliases user memory, so a garbage collector that finds one in a pointer-typed variable
//! (Go's) ignores it.
//!
//! `fork()` copies the table's lock in whatever state another thread left it, and that
//! thread does not exist in the child. So a table is never touched across a fork: the
//! first call in a child finds the table built in another fork generation and swaps in a
//! fresh, empty one (lock-free), leaving the old one untouched but reachable. Handles
//! inherited from the parent carry the old fork generation and fail with `CKV_CLOSED`.

use crate::error::{Error, ErrorKind, Result};
use crate::runtime;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, RwLock};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("coordkv handles assume a 64-bit target");

struct Slot<T> {
    generation: u32,
    value: Option<Arc<T>>,
}

/// The table of one fork generation.
struct Generation<T> {
    fork_generation: u64,
    slots: RwLock<(Vec<Slot<T>>, Vec<usize>)>,
    /// The table this one replaced in a forked child; kept so it stays reachable.
    _previous: *mut Generation<T>,
}

pub struct HandleTable<T> {
    current: AtomicPtr<Generation<T>>,
    what: &'static str,
}

// SAFETY: the raw pointers only ever point to leaked `Generation`s, which are Sync when T is.
unsafe impl<T: Send + Sync> Sync for HandleTable<T> {}

const TAG: u64 = 1 << 63;
const FORK_BITS: u64 = 0x7F;
const SLOT_GENERATION_MASK: u32 = 0x00FF_FFFF;

fn encode(index: usize, generation: u32, fork_generation: u64) -> usize {
    let fork = (fork_generation & FORK_BITS) << 56;
    (TAG | fork | ((generation as u64) << 32) | (index as u64 + 1)) as usize
}

/// `(slot index, slot generation, fork generation bits)`, or None for a non-handle.
fn decode(handle: usize) -> Option<(usize, u32, u64)> {
    let handle = handle as u64;
    if handle & TAG == 0 {
        return None;
    }
    let index = (handle & 0xFFFF_FFFF).checked_sub(1)? as usize;
    let generation = ((handle >> 32) as u32) & SLOT_GENERATION_MASK;
    Some((index, generation, (handle >> 56) & FORK_BITS))
}

impl<T: Send + Sync> HandleTable<T> {
    pub const fn new(what: &'static str) -> Self {
        HandleTable {
            current: AtomicPtr::new(std::ptr::null_mut()),
            what,
        }
    }

    /// This process's table, created on first use and again in a forked child.
    fn table(&self) -> &Generation<T> {
        let fork_generation = runtime::fork_generation();
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: non-null pointers here come from Box::into_raw and are never freed.
            if let Some(table) = unsafe { current.as_ref() } {
                if table.fork_generation == fork_generation {
                    return table;
                }
            }
            let fresh = Box::into_raw(Box::new(Generation {
                fork_generation,
                slots: RwLock::new((Vec::new(), Vec::new())),
                _previous: current,
            }));
            match self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: just published; lives for the rest of the process.
                Ok(_) => return unsafe { &*fresh },
                // SAFETY: never published, so nobody else can see it.
                Err(_) => drop(unsafe { Box::from_raw(fresh) }),
            }
        }
    }

    /// Stores `value` and returns its handle (never 0).
    pub fn insert(&self, value: Arc<T>) -> usize {
        let table = self.table();
        let mut guard = table.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let index = match free.pop() {
            Some(index) => index,
            None => {
                slots.push(Slot {
                    generation: 1,
                    value: None,
                });
                slots.len() - 1
            }
        };
        slots[index].value = Some(value);
        encode(index, slots[index].generation, table.fork_generation)
    }

    /// The object behind `handle`; `InvalidArgument` for NULL or a value coordkv never
    /// returned, `Closed` for a closed one or one inherited across `fork()`.
    pub fn get(&self, handle: usize) -> Result<Arc<T>> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let Some((index, generation, fork_bits)) = decode(handle) else {
            return Err(Error::invalid(format!(
                "{} is not a handle coordkv returned",
                self.what
            )));
        };
        let table = self.table();
        if fork_bits != table.fork_generation & FORK_BITS {
            return Err(Error::new(
                ErrorKind::Closed,
                format!(
                    "{} was opened before fork(); open a new one in this process",
                    self.what
                ),
            ));
        }
        let guard = table.slots.read().unwrap_or_else(|p| p.into_inner());
        match guard.0.get(index) {
            Some(Slot {
                generation: g,
                value: Some(value),
            }) if *g == generation => Ok(value.clone()),
            _ => Err(Error::closed(self.what)),
        }
    }

    /// Removes the object; `None` if the handle was NULL, stale, inherited across `fork()`
    /// or already removed.
    pub fn remove(&self, handle: usize) -> Option<Arc<T>> {
        let (index, generation, fork_bits) = decode(handle)?;
        let table = self.table();
        if fork_bits != table.fork_generation & FORK_BITS {
            return None;
        }
        let mut guard = table.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let slot = slots.get_mut(index)?;
        if slot.generation != generation || slot.value.is_none() {
            return None;
        }
        // Generation 0 is never handed out; the counter wraps back to 1.
        slot.generation = ((slot.generation + 1) & SLOT_GENERATION_MASK).max(1);
        free.push(index);
        slot.value.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_tagged_and_stale_ones_refused() {
        let table = HandleTable::new("thing");
        let first = table.insert(Arc::new(1));
        assert!(first as u64 >= 1 << 63, "never a user-space address");
        assert_eq!(*table.get(first).unwrap(), 1);
        assert_eq!(*table.remove(first).unwrap(), 1);
        assert_eq!(table.get(first).unwrap_err().kind(), ErrorKind::Closed);
        assert!(table.remove(first).is_none(), "double close is a no-op");
        let second = table.insert(Arc::new(2));
        assert_ne!(first, second, "a reused slot gets a new generation");
        assert_eq!(table.get(first).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(table.get(0).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            table.get(0x1234).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
