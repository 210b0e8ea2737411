//! Opaque handles for long-lived objects (stores, watches).
//!
//! A handle is not a pointer to the object: it encodes a slot index and the slot's
//! generation, and every call looks it up. Bit 63 is always set, so a handle lies in the
//! kernel half of the address space and can never alias user memory — a garbage collector
//! that finds one in a pointer-typed variable (Go's) ignores it. Closing empties the slot and bumps its
//! generation, so a stale or double-closed handle is refused with `CKV_CLOSED` and no
//! freed memory is ever read. A lookup clones an `Arc`, so an object closed while
//! another thread is inside a call stays alive until that call returns.

use crate::error::{Error, Result};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("coordkv handles assume a 64-bit target");
use std::sync::{Arc, RwLock};

struct Slot<T> {
    generation: u32,
    value: Option<Arc<T>>,
}

pub struct HandleTable<T> {
    slots: RwLock<(Vec<Slot<T>>, Vec<usize>)>,
    what: &'static str,
}

impl<T> HandleTable<T> {
    pub const fn new(what: &'static str) -> Self {
        HandleTable {
            slots: RwLock::new((Vec::new(), Vec::new())),
            what,
        }
    }

    const TAG: u64 = 1 << 63;
    const GENERATION_MASK: u32 = 0x7FFF_FFFF;

    fn encode(index: usize, generation: u32) -> usize {
        (Self::TAG | ((generation as u64) << 32) | (index as u64 + 1)) as usize
    }

    fn decode(handle: usize) -> Option<(usize, u32)> {
        let handle = handle as u64;
        if handle & Self::TAG == 0 {
            return None;
        }
        let index = (handle & 0xFFFF_FFFF).checked_sub(1)? as usize;
        Some((index, ((handle >> 32) as u32) & Self::GENERATION_MASK))
    }

    /// Stores `value` and returns its handle (never 0).
    pub fn insert(&self, value: Arc<T>) -> usize {
        let mut guard = self.slots.write().unwrap_or_else(|p| p.into_inner());
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
        Self::encode(index, slots[index].generation)
    }

    /// The object behind `handle`; `InvalidArgument` for NULL, `Closed` for a closed one.
    pub fn get(&self, handle: usize) -> Result<Arc<T>> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let Some((index, generation)) = Self::decode(handle) else {
            return Err(Error::invalid(format!(
                "{} is not a handle coordkv returned",
                self.what
            )));
        };
        let guard = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match guard.0.get(index) {
            Some(Slot {
                generation: g,
                value: Some(value),
            }) if *g == generation => Ok(value.clone()),
            _ => Err(Error::closed(self.what)),
        }
    }

    /// Removes the object; `None` if the handle was NULL, stale or already removed.
    pub fn remove(&self, handle: usize) -> Option<Arc<T>> {
        if handle == 0 {
            return None;
        }
        let (index, generation) = Self::decode(handle)?;
        let mut guard = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let slot = slots.get_mut(index)?;
        if slot.generation != generation || slot.value.is_none() {
            return None;
        }
        // Generation 0 is never handed out; 31 bits wrap back to 1.
        slot.generation = (slot.generation + 1) & Self::GENERATION_MASK;
        slot.generation = slot.generation.max(1);
        free.push(index);
        slot.value.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
