//! Opaque handles for long-lived objects (stores, watches).
//!
//! A handle is not a pointer to the object: it encodes a slot index, the slot's generation,
//! the kind of object (store or watch) and the process's fork generation, and every call
//! looks it up. So a handle of one kind is never taken for the other, and a value
//! coordkv never returned is refused with `CKV_INVALID_ARGUMENT`.
//!
//! Closing a handle has two steps. `begin_close` marks the slot closing: lookups fail with
//! `CKV_CLOSED` from then on, but every further close still finds the object, so it can
//! wait for a callback still running (see `delivery` in the watch module). `retire`, run
//! once no callback runs, empties the slot and bumps its generation, so a stale handle is
//! refused with `CKV_CLOSED` and no freed memory is ever read. A slot whose generation is
//! exhausted is retired for good instead of wrapping around: a closed handle never comes
//! back to life as another object. A lookup clones an `Arc`, so an object closed while
//! another thread is inside a call stays alive until that call returns.
//! Bit 63 is always set: a handle lies in the kernel half of the address space and never
//! aliases user memory, so a garbage collector that finds one in a pointer-typed variable
//! (Go's) ignores it.
//!
//! `fork()` copies the table's lock in whatever state another thread left it, and that
//! thread does not exist in the child. So a table is never locked across a fork: the
//! first call in a child finds the table built in another fork generation and swaps in a
//! fresh, empty one (lock-free), leaving the old one untouched but reachable. Handles
//! inherited from the parent carry the old fork generation and fail with `CKV_CLOSED`;
//! the old table's slot count is read without its lock, to tell them from garbage.

use super::args::Out;
use crate::error::{Error, ErrorKind, Result};
use crate::per_process::{InProcess, PerProcess};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("coordkv handles assume a 64-bit target");

struct Slot<T> {
    generation: u32,
    value: Option<Arc<T>>,
    /// `begin_close` ran: lookups fail, closes still find the value.
    closing: bool,
}

/// The table of one process.
struct Slots<T> {
    slots: RwLock<(Vec<Slot<T>>, Vec<usize>)>,
    /// How many slots were ever made (read without the lock after a fork).
    issued: AtomicUsize,
}

/// A process's table and the fork generation it was made in.
type Generation<T> = InProcess<Slots<T>>;

/// Which table a handle belongs to, encoded in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Kind {
    Store = 1,
    Watch = 2,
}

pub struct HandleTable<T> {
    tables: PerProcess<Slots<T>>,
    what: &'static str,
    kind: Kind,
}

const TAG: u64 = 1 << 63;
const FORK_BITS: u64 = 0x7F;
const SLOT_GENERATION_MASK: u32 = 0x00FF_FFFF;
const KIND_SHIFT: u32 = 28;
const INDEX_MASK: u64 = (1 << KIND_SHIFT) - 1;
/// Slots a table can hold (the index field, less the 0 that is never used).
const MAX_SLOTS: usize = INDEX_MASK as usize - 1;

fn encode(kind: Kind, index: usize, generation: u32, fork_generation: u64) -> usize {
    let fork = (fork_generation & FORK_BITS) << 56;
    let kind = (kind as u64) << KIND_SHIFT;
    (TAG | fork | ((generation as u64) << 32) | kind | (index as u64 + 1)) as usize
}

struct Decoded {
    kind: u64,
    index: usize,
    generation: u32,
    fork_bits: u64,
}

/// The fields of a tagged value, or None for a value that cannot be a handle.
fn decode(handle: usize) -> Option<Decoded> {
    let handle = handle as u64;
    if handle & TAG == 0 {
        return None;
    }
    let generation = ((handle >> 32) as u32) & SLOT_GENERATION_MASK;
    Some(Decoded {
        kind: (handle >> KIND_SHIFT) & 0xF,
        index: (handle & INDEX_MASK).checked_sub(1)? as usize,
        generation: (generation != 0).then_some(generation)?,
        fork_bits: (handle >> 56) & FORK_BITS,
    })
}

impl<T: Send + Sync> HandleTable<T> {
    pub const fn new(what: &'static str, kind: Kind) -> Self {
        HandleTable {
            tables: PerProcess::new(),
            what,
            kind,
        }
    }

    /// This process's table, created on first use and again in a forked child.
    fn table(&self) -> &Generation<T> {
        self.tables.get_or_init(|| Slots {
            slots: RwLock::new((Vec::new(), Vec::new())),
            issued: AtomicUsize::new(0),
        })
    }

    /// Stores `value` and returns its handle (never 0); `LIMIT` when the table is full.
    pub fn insert(&self, value: Arc<T>) -> Result<usize> {
        let table = self.table();
        let mut guard = table.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let index = match free.pop() {
            Some(index) => index,
            None if slots.len() >= MAX_SLOTS => {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!("too many open {} handles", self.what),
                ))
            }
            None => {
                slots.push(Slot {
                    generation: 1,
                    value: None,
                    closing: false,
                });
                table.issued.store(slots.len(), Ordering::Release);
                slots.len() - 1
            }
        };
        slots[index].value = Some(value);
        slots[index].closing = false;
        Ok(encode(
            self.kind,
            index,
            slots[index].generation,
            table.fork_generation,
        ))
    }

    /// Checks what a handle says about itself; the slot's state is checked by the caller.
    fn decode_own(&self, handle: usize) -> Result<(&Generation<T>, Decoded)> {
        let what = self.what;
        if handle == 0 {
            return Err(Error::invalid(format!("{what} is NULL")));
        }
        let not_ours = || Error::invalid(format!("{what} is not a {what} handle coordkv returned"));
        let decoded = decode(handle).ok_or_else(not_ours)?;
        if decoded.kind != self.kind as u64 {
            let other = match decoded.kind {
                1 => "store",
                2 => "watch",
                _ => return Err(not_ours()),
            };
            return Err(Error::invalid(format!(
                "{what} is a {other} handle, not a {what} handle"
            )));
        }
        let table = self.table();
        if decoded.fork_bits != table.fork_generation & FORK_BITS {
            return Err(if self.issued_before_fork(&decoded) {
                Error::new(
                    ErrorKind::Closed,
                    format!("{what} was opened before fork(); open a new one in this process"),
                )
            } else {
                not_ours()
            });
        }
        if decoded.index >= table.issued.load(Ordering::Acquire) {
            return Err(not_ours());
        }
        Ok((table, decoded))
    }

    /// Whether an older table (of a parent process) could have handed out this handle.
    fn issued_before_fork(&self, decoded: &Decoded) -> bool {
        // Only their atomics are read: a parent's lock may be held by a thread not here.
        self.tables.generations().any(|parent| {
            parent.fork_generation & FORK_BITS == decoded.fork_bits
                && decoded.index < parent.issued.load(Ordering::Acquire)
        })
    }

    /// The object behind `handle`; `InvalidArgument` for NULL, a handle of another kind or
    /// a value coordkv never returned, `Closed` for a closed one or one inherited across
    /// `fork()`.
    pub fn get(&self, handle: usize) -> Result<Arc<T>> {
        let (table, d) = self.decode_own(handle)?;
        let guard = table.slots.read().unwrap_or_else(|p| p.into_inner());
        let slot = &guard.0[d.index];
        match &slot.value {
            Some(value) if slot.generation == d.generation && !slot.closing => Ok(value.clone()),
            _ if d.generation > slot.generation => Err(Error::invalid(format!(
                "{0} is not a {0} handle coordkv returned",
                self.what
            ))),
            _ => Err(Error::closed(self.what)),
        }
    }

    /// Marks the handle closing and returns its object: for the first close and for every
    /// later one until [`HandleTable::retire`]. `None` for NULL, garbage, a handle of
    /// another kind, one inherited across `fork()` or one already retired.
    pub fn begin_close(&self, handle: usize) -> Option<Arc<T>> {
        let (table, d) = self.decode_own(handle).ok()?;
        let mut guard = table.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = &mut guard.0[d.index];
        if slot.generation != d.generation {
            return None;
        }
        slot.closing = true;
        slot.value.clone()
    }

    /// Empties the slot of a closing handle for good; a no-op for any other handle.
    pub fn retire(&self, handle: usize) {
        let Ok((table, d)) = self.decode_own(handle) else {
            return;
        };
        let mut guard = table.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, free) = &mut *guard;
        let slot = &mut slots[d.index];
        if slot.generation != d.generation || slot.value.is_none() || !slot.closing {
            return;
        }
        let value = slot.value.take();
        slot.closing = false;
        if slot.generation < SLOT_GENERATION_MASK {
            slot.generation += 1;
            free.push(d.index);
        }
        // else: every generation of this slot was handed out; it is never reused.
        drop(guard);
        drop(value); // outside the lock: dropping the object may run its own close
    }

    /// Closes at once: `begin_close` and `retire` (for objects with no callback to wait for).
    #[cfg(test)]
    pub fn remove(&self, handle: usize) -> Option<Arc<T>> {
        let value = self.begin_close(handle)?;
        self.retire(handle);
        Some(value)
    }

    /// How many handles are open or closing (tests and diagnostics).
    pub fn live(&self) -> usize {
        let table = self.table();
        let guard = table.slots.read().unwrap_or_else(|p| p.into_inner());
        guard.0.iter().filter(|s| s.value.is_some()).count()
    }

    #[cfg(test)]
    fn set_generation(&self, handle: usize, generation: u32) -> usize {
        let (table, d) = self.decode_own(handle).unwrap();
        let mut guard = table.slots.write().unwrap();
        guard.0[d.index].generation = generation;
        encode(self.kind, d.index, generation, table.fork_generation)
    }
}

/// What a `_close` needs from an object behind a handle: closing it, and learning when
/// no callback of it runs any more (so its slot can be retired without a callback still
/// holding the handle).
pub trait Closable {
    fn close(&self);
    fn when_quiet(&self, action: Box<dyn FnOnce() + Send>);
}

/// The handle operations as the entry points spell them: C pointers in and out.
impl<T: Closable + Send + Sync + 'static> HandleTable<T> {
    /// The object behind a handle C passed in (see [`HandleTable::get`]).
    pub(crate) fn lookup<H>(&self, handle: *mut H) -> Result<Arc<T>> {
        self.get(handle as usize)
    }

    /// Files `value` in the table and writes its handle to `out`.
    pub(crate) fn publish<H>(&self, value: T, out: Out<'_, *mut H>) -> Result<()> {
        let handle = self.insert(Arc::new(value))?;
        out.set(handle as *mut H);
        Ok(())
    }

    /// The body of a `_close`: NULL, garbage, a handle of the other kind and one already
    /// retired are no-ops. The slot stays (closing) until no callback runs, so a later
    /// close from another thread still finds the object and waits.
    pub(crate) fn close<H>(&'static self, handle: *mut H) {
        let handle = handle as usize;
        if let Some(object) = self.begin_close(handle) {
            object.close();
            object.when_quiet(Box::new(move || self.retire(handle)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_tagged_and_stale_ones_refused() {
        let table = HandleTable::new("thing", Kind::Store);
        let first = table.insert(Arc::new(1)).unwrap();
        assert!(first as u64 >= 1 << 63, "never a user-space address");
        assert_eq!(*table.get(first).unwrap(), 1);
        assert_eq!(*table.remove(first).unwrap(), 1);
        assert_eq!(table.get(first).unwrap_err().kind(), ErrorKind::Closed);
        assert!(table.remove(first).is_none(), "double close is a no-op");
        let second = table.insert(Arc::new(2)).unwrap();
        assert_ne!(first, second, "a reused slot gets a new generation");
        assert_eq!(table.get(first).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(table.get(0).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            table.get(0x1234).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn kinds_are_told_apart_and_garbage_is_invalid() {
        let stores = HandleTable::new("store", Kind::Store);
        let watches = HandleTable::new("watch", Kind::Watch);
        let s = stores.insert(Arc::new(1)).unwrap();
        let w = watches.insert(Arc::new(2)).unwrap();
        assert_ne!(s, w);
        let err = stores.get(w).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("watch handle"), "{}", err.message());
        assert!(
            stores.begin_close(w).is_none(),
            "a watch never closes a store"
        );
        assert_eq!(*stores.get(s).unwrap(), 1);
        for garbage in [
            1usize << 63 | 0x7F << 56 | 1 << 32 | 1 << 28 | 5,
            usize::MAX,
        ] {
            let err = stores.get(garbage).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{garbage:#x}");
            assert!(!err.message().contains("fork"), "{}", err.message());
        }
    }

    #[test]
    fn closing_handles_fail_lookups_but_reach_later_closes() {
        let table = HandleTable::new("watch", Kind::Watch);
        let h = table.insert(Arc::new(7)).unwrap();
        assert_eq!(*table.begin_close(h).unwrap(), 7);
        assert_eq!(table.get(h).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(
            *table.begin_close(h).unwrap(),
            7,
            "a second close still finds it"
        );
        table.retire(h);
        assert!(table.begin_close(h).is_none());
        assert_eq!(table.live(), 0);
    }

    #[test]
    fn an_exhausted_slot_is_retired_not_reused() {
        let table = HandleTable::new("watch", Kind::Watch);
        let first = table.insert(Arc::new(1)).unwrap();
        let last = table.set_generation(first, SLOT_GENERATION_MASK);
        table.remove(last).unwrap();
        let next = table.insert(Arc::new(2)).unwrap();
        assert_ne!(
            next & INDEX_MASK as usize,
            last & INDEX_MASK as usize,
            "a fresh slot"
        );
        assert_eq!(table.get(last).unwrap_err().kind(), ErrorKind::Closed);
        for g in 1..=SLOT_GENERATION_MASK {
            if g % 65_521 != 0 && g > 3 {
                continue;
            }
            let stale = encode(Kind::Watch, 0, g, 0);
            assert_eq!(table.get(stale).unwrap_err().kind(), ErrorKind::Closed);
        }
    }
}
