//! The contract between a backend's feed and the hub: a feed dispatches every write in
//! revision order and serves catch-ups atomically with respect to its dispatches.

use crate::entry::Entry;
use crate::error::Result;
pub use crate::key::Scope;

/// How a feed hands a catch-up to the hub (see [`Feed::catch_up`]).
pub type Register<'a> = &'a mut dyn FnMut(CatchUp);

/// What a watch wants before live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpMode {
    /// Nothing: live events from registration on.
    Live,
    /// The live entries in scope, then SYNCED.
    Snapshot,
    /// Every retained event in scope at or after `start`; `with_prev` when the watcher
    /// wants each event's previous value (also for the first replayed event of a key).
    Replay { start: u64, with_prev: bool },
}

/// What the feed hands to a registration, inside its critical section.
#[derive(Debug, Clone, Default)]
pub struct CatchUp {
    /// Entries in scope, in revision order (replay) or key order (snapshot), each with
    /// the key's previous live entry when the feed knows it.
    pub entries: Vec<(Entry, Option<Entry>)>,
    /// The revision the catch-up is complete through: live dispatch continues after it.
    pub through: u64,
    /// A replay could not be complete: some event in scope at or after the start is gone.
    pub history_lost: bool,
}

/// A source of events for a hub: it calls [`Hub::dispatch`] with every write, in
/// revision order, and serves catch-ups atomically with respect to those calls.
pub trait Feed: Send + Sync {
    /// Computes the catch-up for `target` (a key, or a prefix when `prefix`) and calls
    /// `register` with it such that every event after `CatchUp::through` is dispatched
    /// after `register` returns, and none at or before it is dispatched afterwards.
    fn catch_up(&self, scope: Scope, mode: CatchUpMode, register: Register) -> Result<()>;

    /// A watcher on `target` left the hub (closed, ended, or never registered): a feed
    /// that subscribes per target may stop following it. Called under the hub's lock.
    fn release(&self, _scope: Scope) {}

    /// The hub closed: stop feeding it and release server-side resources.
    fn shutdown(&self) {}
}
