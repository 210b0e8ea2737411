//! Opaque handles for long-lived objects (stores, watches).
//!
//! A handle is not a pointer to the object: it encodes a slot index and the slot's
//! generation, and every call looks it up. Closing empties the slot and bumps its
//! generation, so a stale or double-closed handle is refused with `CKV_CLOSED` and no
//! freed memory is ever read. A lookup clones an `Arc`, so an object closed while
//! another thread is inside a call stays alive until that call returns.

use crate::error::{Error, Result};
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

    fn encode(index: usize, generation: u32) -> usize {
        ((generation as usize) << 32) | (index + 1)
    }

    fn decode(handle: usize) -> (usize, u32) {
        (
            (handle & 0xFFFF_FFFF).wrapping_sub(1),
            (handle >> 32) as u32,
        )
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
        let (index, generation) = Self::decode(handle);
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
        let (index, generation) = Self::decode(handle);
        let mut guard = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let slot = slots.get_mut(index)?;
        if slot.generation != generation || slot.value.is_none() {
            return None;
        }
        // Generation 0 is never handed out, so a wrapped generation cannot forge NULL.
        slot.generation = slot.generation.wrapping_add(1).max(1);
        free.push(index);
        slot.value.take()
    }
}
