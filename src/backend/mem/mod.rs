//! `mem://`: an in-process emulation of a JetStream KV bucket.
//!
//! The state is what a KV stream holds: a log of retained messages ordered by revision
//! (the stream sequence) and, per key, its retained revisions, at most `history` of them.
//! Writing past `history` drops the key's oldest message from the log, a purge leaves only
//! its marker, exactly as `max_msgs_per_subject` and roll-up do on the server, so replays,
//! history and CAS behave the same on both backends.
//!
//! One `RwLock` guards the state; writers take it exclusively and notify the write
//! observer while holding it, so observers see writes in revision order. `snapshot` and
//! `replay` run their visitor under the read lock: the watch hub registers a watcher
//! inside that visitor, so no write can fall between "what was read" and "what will be
//! observed" — the seam has neither a gap nor a duplicate.
//!
//! Point operations (every write, `get`, `history`) find a key through a hash index, one
//! probe whether the key is new or not; the sorted key set is touched only when a key is
//! first written, and serves `keys`/`list`/snapshots by prefix. A key's name is allocated
//! once and shared by its revisions, and a write clones no entry: the observer borrows the
//! stored one, so an unwatched put costs one value copy and, for a new key, its name.
//!
//! To tell a watcher honestly whether a replay is complete, the state also remembers, per
//! key, the newest revision it ever dropped (history limit or purge): a replay from `from`
//! is complete for a key exactly when that revision is below `from`.

mod expiry;
pub mod feed;

use super::{Backend, LeaseRecord};
use crate::entry::{now_ns, Entry, Operation, WriteOptions};
use crate::error::{Error, Result};
use crate::key::Scope;
use crate::sleeper::Sleeper;
use crate::sync::{read, write};
use bytes::Bytes;
use hashbrown::hash_map::EntryRef;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound::{Included, Unbounded};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

/// Called under the write lock with every committed entry, in revision order, and the
/// key's previous entry when that one was a live value (the watch hub's `prev_value`).
pub type WriteObserver = Arc<dyn Fn(&Entry, Option<&Entry>) + Send + Sync>;

/// What a replay saw besides its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEnd {
    /// The store's last revision while the read lock was held.
    pub last_revision: u64,
    /// The newest revision no longer retained among the keys in scope (0 if none):
    /// a replay from `from` is complete only when this is below `from`.
    pub dropped_through: u64,
}

/// The retained entries of one key, oldest first, and what it lost.
struct KeyHistory {
    entries: VecDeque<Entry>,
    /// The newest revision dropped from this key's history (trimmed or purged), or 0.
    dropped_through: u64,
}

impl KeyHistory {
    fn latest(&self) -> &Entry {
        self.entries.back().expect("a key keeps at least one entry")
    }
}

struct State {
    last_revision: u64,
    /// Retained revisions in order, each naming its key.
    log: BTreeMap<u64, Arc<str>>,
    /// Every key ever written (keys are never forgotten: a purge leaves its marker).
    keys: hashbrown::HashMap<Arc<str>, KeyHistory>,
    /// The same keys, sorted, for prefix ranges.
    sorted: BTreeSet<Arc<str>>,
    /// What ends at a deadline: revisions written with a TTL, and lease records.
    timers: expiry::Timers,
}

impl State {
    /// The histories of the keys starting with `prefix`, in key order.
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a KeyHistory> + 'a {
        self.sorted
            .range::<str, _>((Included(prefix), Unbounded))
            .take_while(move |key| key.starts_with(prefix))
            .map(move |key| &self.keys[key])
    }
}

pub struct MemBackend {
    state: RwLock<State>,
    history: usize,
    closed: AtomicBool,
    observer: RwLock<Option<WriteObserver>>,
    /// Wakes the expiry thread when a deadline is added (see `expiry`).
    expiry: Arc<Sleeper>,
    me: Weak<MemBackend>,
}

enum Expect {
    Nothing,
    NoLiveValue,
    Revision(u64),
}

impl MemBackend {
    pub fn new(history: u32) -> Arc<MemBackend> {
        Arc::new_cyclic(|me| MemBackend {
            state: RwLock::new(State {
                last_revision: 0,
                log: BTreeMap::new(),
                keys: hashbrown::HashMap::new(),
                sorted: BTreeSet::new(),
                timers: expiry::Timers::default(),
            }),
            history: history.max(1) as usize,
            closed: AtomicBool::new(false),
            observer: RwLock::new(None),
            expiry: Arc::default(),
            me: me.clone(),
        })
    }

    /// Installs the function told about every committed write (the watch hub's feed).
    pub fn set_observer(&self, observer: Option<WriteObserver>) {
        *write(&self.observer) = observer;
    }

    /// Runs `f`, under the read lock (so no write interleaves), with the retained entries
    /// of `scope` (a key, or a byte-wise prefix when `prefix`) at revision >= `from` in
    /// revision order, each paired with the key's previous retained entry when that was a
    /// live value, and with what else the replay saw (see [`ReplayEnd`]).
    pub fn replay<R>(
        &self,
        from: u64,
        scope: &str,
        prefix: bool,
        f: impl FnOnce(Vec<(Entry, Option<Entry>)>, ReplayEnd) -> R,
    ) -> Result<R> {
        let state = self.read()?;
        let in_scope = |key: &str| {
            Scope {
                target: scope,
                prefix,
            }
            .contains(key)
        };
        let mut entries = Vec::new();
        for (&rev, key) in state.log.range(from..) {
            if !in_scope(key) {
                continue;
            }
            let retained = &state.keys[key].entries;
            if let Ok(at) = retained.binary_search_by_key(&rev, |e| e.revision) {
                let prev = at
                    .checked_sub(1)
                    .map(|p| &retained[p])
                    .filter(|e| e.is_live());
                entries.push((retained[at].clone(), prev.cloned()));
            }
        }
        let dropped_through = if prefix {
            state
                .under(scope)
                .map(|h| h.dropped_through)
                .max()
                .unwrap_or(0)
        } else {
            state.keys.get(scope).map_or(0, |h| h.dropped_through)
        };
        let end = ReplayEnd {
            last_revision: state.last_revision,
            dropped_through,
        };
        Ok(f(entries, end))
    }

    /// Runs `f` with the store's last revision under the read lock: a registration made
    /// inside `f` sees every later write through the observer and none before.
    pub fn at_last_revision<R>(&self, f: impl FnOnce(u64) -> R) -> Result<R> {
        let state = self.read()?;
        Ok(f(state.last_revision))
    }

    /// Runs `f` with the live entries under `prefix` and the revision they are current at,
    /// under the read lock, so a watch can take a snapshot and register atomically.
    pub fn snapshot<R>(&self, prefix: &str, f: impl FnOnce(u64, Vec<Entry>) -> R) -> Result<R> {
        let state = self.read()?;
        let live = state
            .under(prefix)
            .map(KeyHistory::latest)
            .filter(|e| e.is_live())
            .cloned()
            .collect();
        Ok(f(state.last_revision, live))
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        Ok(read(&self.state))
    }

    fn write_lock(&self) -> Result<RwLockWriteGuard<'_, State>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        Ok(write(&self.state))
    }

    fn write(
        &self,
        key: &str,
        value: Bytes,
        op: Operation,
        expect: Expect,
        meta: &WriteOptions,
    ) -> Result<u64> {
        if meta.ttl.is_some() {
            expiry::ensure_running(&self.expiry, &self.me)?;
        }
        let mut state = self.write_lock()?;
        let State {
            last_revision,
            log,
            keys,
            sorted,
            timers,
        } = &mut *state;
        let slot = keys.entry_ref(key);
        let latest = match &slot {
            EntryRef::Occupied(o) => Some(o.get().latest()),
            EntryRef::Vacant(_) => None,
        };
        let current = latest.map_or(0, |e| e.revision);
        match expect {
            Expect::Nothing => {}
            Expect::NoLiveValue => {
                if latest.is_some_and(Entry::is_live) {
                    return Err(Error::conflict(
                        current,
                        format!("key {key:?} already exists at revision {current}"),
                    ));
                }
            }
            Expect::Revision(want) => {
                if current != want {
                    return Err(Error::conflict(
                        current,
                        format!("key {key:?} is at revision {current}, not {want}"),
                    ));
                }
            }
        }
        let revision = *last_revision + 1;
        *last_revision = revision;
        let (name, history) = match slot {
            EntryRef::Occupied(o) => {
                let name = o.key().clone();
                (name, o.into_mut())
            }
            EntryRef::Vacant(v) => {
                let name: Arc<str> = Arc::from(key);
                sorted.insert(name.clone());
                let fresh = KeyHistory {
                    entries: VecDeque::with_capacity(1),
                    dropped_through: 0,
                };
                (name.clone(), v.insert_with_key(name, fresh))
            }
        };
        let retained = &mut history.entries;
        let mut dropped = 0;
        // A purge drops the entry the observer is told was previous: keep that one. So do
        // an expiry and a write with a TTL (roll-ups, as on the server).
        let mut purged_prev = None;
        if matches!(op, Operation::Purge | Operation::Expired) || meta.ttl.is_some() {
            purged_prev = retained.back().filter(|e| e.is_live()).cloned();
            for old in retained.drain(..) {
                log.remove(&old.revision);
                dropped = dropped.max(old.revision);
            }
        }
        retained.push_back(Entry {
            key: name.clone(),
            value,
            revision,
            operation: op,
            timestamp_ns: now_ns(),
            lease: meta.lease,
            quiet: meta.quiet,
        });
        if let Some(ttl) = meta.ttl {
            timers.expire_revision(Instant::now() + ttl, revision);
            self.expiry.wake();
        }
        while retained.len() > self.history {
            if let Some(old) = retained.pop_front() {
                log.remove(&old.revision);
                dropped = dropped.max(old.revision);
            }
        }
        if dropped != 0 {
            history.dropped_through = dropped;
        }
        log.insert(revision, name);
        if let Some(observer) = &*read(&self.observer) {
            let retained = &history.entries;
            let entry = retained.back().expect("just written");
            let prev = match &purged_prev {
                Some(purged) => Some(purged),
                None => retained
                    .len()
                    .checked_sub(2)
                    .map(|p| &retained[p])
                    .filter(|e| e.is_live()),
            };
            observer(entry, prev);
        }
        Ok(revision)
    }
}

impl Backend for MemBackend {
    fn put(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64> {
        self.write(key, value, Operation::Put, Expect::Nothing, meta)
    }

    fn create(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64> {
        self.write(key, value, Operation::Put, Expect::NoLiveValue, meta)
    }

    fn update(&self, key: &str, value: Bytes, revision: u64, meta: &WriteOptions) -> Result<u64> {
        let expect = Expect::Revision(revision);
        self.write(key, value, Operation::Put, expect, meta)
    }

    fn delete(&self, key: &str, revision: u64) -> Result<u64> {
        let expect = if revision == 0 {
            Expect::Nothing
        } else {
            Expect::Revision(revision)
        };
        self.write(
            key,
            Bytes::new(),
            Operation::Delete,
            expect,
            &WriteOptions::default(),
        )
    }

    fn purge(&self, key: &str) -> Result<u64> {
        let meta = WriteOptions::default();
        self.write(key, Bytes::new(), Operation::Purge, Expect::Nothing, &meta)
    }

    fn latest(&self, key: &str) -> Result<Option<Entry>> {
        let state = self.read()?;
        Ok(state.keys.get(key).map(|h| h.latest().clone()))
    }

    fn scan(
        &self,
        prefix: &str,
        _values: bool,
        visit: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let state = self.read()?;
        for latest in state.under(prefix).map(KeyHistory::latest) {
            if latest.is_live() && !visit(latest.clone()) {
                break;
            }
        }
        Ok(())
    }

    fn history(&self, key: &str) -> Result<Vec<Entry>> {
        let state = self.read()?;
        Ok(state
            .keys
            .get(key)
            .map(|h| h.entries.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn last_revision(&self) -> Result<u64> {
        Ok(self.read()?.last_revision)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.set_observer(None);
        self.expiry.stop();
    }

    fn granted_ttl(&self, asked: Duration) -> Result<Duration> {
        // The monotonic clock has no granularity to round to; whole milliseconds keep
        // the number the same in every language's view of it.
        let millis = asked.as_nanos().div_ceil(1_000_000).max(1);
        Ok(Duration::from_millis(
            u64::try_from(millis).unwrap_or(u64::MAX),
        ))
    }

    fn lease_renew(&self, id: u64, ttl: Duration, must_exist: bool) -> Result<bool> {
        expiry::ensure_running(&self.expiry, &self.me)?;
        let mut state = self.write_lock()?;
        let renewed = state
            .timers
            .renew_lease(id, ttl, Instant::now(), must_exist);
        drop(state);
        self.expiry.wake();
        Ok(renewed)
    }

    fn lease_record(&self, id: u64) -> Result<Option<LeaseRecord>> {
        Ok(self.read()?.timers.lease(id, Instant::now()))
    }

    fn lease_records(&self) -> Result<Vec<LeaseRecord>> {
        Ok(self.read()?.timers.leases(Instant::now()))
    }

    fn lease_remove(&self, id: u64) -> Result<bool> {
        let mut state = self.write_lock()?;
        let live = state.timers.lease(id, Instant::now()).is_some();
        state.timers.remove_lease(id);
        Ok(live)
    }
}
