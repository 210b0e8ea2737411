//! `Store`: the public face of the core, the same for every backend.
//!
//! Caller input flows in here first: keys and prefixes are validated, values size-checked,
//! closed and forked-away handles refused. The operations that are compositions of backend
//! primitives live here once — `get` hiding tombstones, `delete_prefix`,
//! `read_modify_write`'s bounded retry loop — so every backend gets them identically.
//! Leases are resolved here too: a write attached to a lease is checked against the
//! lease and handed to this store's lessor (see `lease`), which keeps it alive; the
//! lease calls themselves are in `leases`.

mod leases;

use crate::backend::{self, Backend, Capability};
use crate::config::Config;
use crate::entry::{Entry, WriteOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{validate_key, validate_prefix};
use crate::lease::Lessor;
use crate::runtime;
use crate::watch::delivery;
use crate::watch::hub::{Callback, Delivery, Watcher};
use crate::watch::{Event, Hub, Watch, WatchOptions};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::retry::RetryPolicy;

/// What the caller's function sees in `read_modify_write`: the key's live entry, if any.
pub type Current<'a> = Option<&'a Entry>;

pub struct Store {
    backend: Arc<dyn Backend>,
    /// The watch hub, fed by the backend's feed (mem: write observer; nats: one consumer).
    hub: Arc<Hub>,
    /// The leases this store keeps alive.
    lessor: Arc<Lessor>,
    config: Config,
    fork_generation: u64,
    closed: AtomicBool,
    /// The callback watches the close ended (`None` until closed): every later `close`
    /// waits for them too, so each caller gets the same guarantee.
    ended: Mutex<Option<Vec<Arc<Watcher>>>>,
}

impl Store {
    /// Opens `mem://` or `nats://host:port[,host:port...]` with default options.
    pub fn open(url: &str) -> Result<Store> {
        Store::open_with(Config::from_url(url)?)
    }

    /// Opens a store from a JSON config (see `Config`).
    pub fn open_json(json: &str) -> Result<Store> {
        Store::open_with(Config::from_json(json)?)
    }

    pub fn open_with(config: Config) -> Result<Store> {
        let fork_generation = runtime::fork_generation();
        let backend::Opened { backend, hub } = backend::open(&config)?;
        Ok(Store {
            lessor: Lessor::new(backend.clone()),
            backend,
            hub,
            config,
            fork_generation,
            closed: AtomicBool::new(false),
            ended: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `Ok` when this store's backend (and its server's version) can do `capability`;
    /// UNSUPPORTED naming the server version needed otherwise.
    pub fn require(&self, capability: Capability) -> Result<()> {
        self.live()?.require(capability)
    }

    fn live(&self) -> Result<&dyn Backend> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        runtime::check_same_process(self.fork_generation, "store")?;
        Ok(&*self.backend)
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.config.max_value_size {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "value is {} bytes; this store's max_value_size is {}",
                    value.len(),
                    self.config.max_value_size
                ),
            ));
        }
        Ok(())
    }

    fn checked(&self, key: &str, value: &[u8]) -> Result<(&dyn Backend, Bytes)> {
        let backend = self.live()?;
        validate_key(key)?;
        self.check_value(value)?;
        Ok((backend, Bytes::copy_from_slice(value)))
    }

    pub fn put(&self, key: &str, value: &[u8]) -> Result<u64> {
        self.put_with(key, value, &WriteOptions::default())
    }

    /// `put` attached to a lease, with a TTL, or quiet (see [`WriteOptions`]).
    pub fn put_with(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<u64> {
        self.write_with(key, value, options, |b, value, o| b.put(key, value, o))
    }

    /// `create` with [`WriteOptions`].
    pub fn create_with(&self, key: &str, value: &[u8], options: &WriteOptions) -> Result<u64> {
        self.write_with(key, value, options, |b, value, o| b.create(key, value, o))
    }

    /// `update` with [`WriteOptions`].
    pub fn update_with(
        &self,
        key: &str,
        value: &[u8],
        revision: u64,
        options: &WriteOptions,
    ) -> Result<u64> {
        self.write_with(key, value, options, |b, value, o| {
            b.update(key, value, revision, o)
        })
    }

    /// A write with options: the lease resolved to its TTL before, the key handed to the
    /// lessor after.
    fn write_with(
        &self,
        key: &str,
        value: &[u8],
        options: &WriteOptions,
        write: impl FnOnce(&dyn Backend, Bytes, &WriteOptions) -> Result<u64>,
    ) -> Result<u64> {
        let (backend, value) = self.checked(key, value)?;
        let mut resolved = *options;
        match (options.lease, options.ttl) {
            (0, None) => {}
            (0, Some(ttl)) if ttl.is_zero() => {
                return Err(Error::invalid("a TTL must be greater than zero"))
            }
            (0, Some(ttl)) => resolved.ttl = Some(backend.granted_ttl(ttl)?),
            (lease, None) => resolved.ttl = Some(self.lessor.ttl_for_write(lease)?),
            (_, Some(_)) => {
                return Err(Error::invalid(
                    "a write takes a lease or a TTL, not both (the lease's TTL applies)",
                ))
            }
        }
        let revision = write(backend, value.clone(), &resolved)?;
        if let (lease @ 1.., Some(ttl)) = (resolved.lease, resolved.ttl) {
            self.lessor.attached(lease, ttl, key, revision, value);
        }
        Ok(revision)
    }

    pub fn get(&self, key: &str) -> Result<Entry> {
        let backend = self.live()?;
        validate_key(key)?;
        match backend.latest(key)? {
            Some(entry) if entry.is_live() => Ok(entry),
            _ => Err(Error::not_found(key)),
        }
    }

    pub fn create(&self, key: &str, value: &[u8]) -> Result<u64> {
        self.create_with(key, value, &WriteOptions::default())
    }

    pub fn update(&self, key: &str, value: &[u8], revision: u64) -> Result<u64> {
        self.update_with(key, value, revision, &WriteOptions::default())
    }

    /// Writes a DELETE tombstone (even over an absent key, as JetStream KV does);
    /// `revision != 0` makes it conditional. Returns the tombstone's revision.
    pub fn delete(&self, key: &str, revision: u64) -> Result<u64> {
        let backend = self.live()?;
        validate_key(key)?;
        backend.delete(key, revision)
    }

    pub fn purge(&self, key: &str) -> Result<u64> {
        let backend = self.live()?;
        validate_key(key)?;
        backend.purge(key)
    }

    /// Deletes every live key under `prefix`; returns how many were deleted. Each key is
    /// deleted at the revision it was listed with: a key rewritten meanwhile keeps its newer
    /// value (that write is ordered after this delete) and is not counted.
    pub fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let backend = self.live()?;
        validate_prefix(prefix)?;
        let mut listed = Vec::new();
        backend.scan(prefix, false, &mut |entry| {
            listed.push((entry.key, entry.revision));
            true
        })?;
        let mut deleted = 0;
        for (key, revision) in listed {
            match backend.delete(&key, revision) {
                Ok(_) => deleted += 1,
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Live keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.scan_collect(prefix, false, |entry| entry.key.to_string())
    }

    /// Live entries under `prefix`, sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.scan_collect(prefix, true, |entry| entry)
    }

    /// Every live entry under `prefix`, in key order, through `take` (`values == false`
    /// lets a backend skip reading values).
    fn scan_collect<T>(
        &self,
        prefix: &str,
        values: bool,
        mut take: impl FnMut(Entry) -> T,
    ) -> Result<Vec<T>> {
        let backend = self.live()?;
        validate_prefix(prefix)?;
        let mut found = Vec::new();
        backend.scan(prefix, values, &mut |entry| {
            found.push(take(entry));
            true
        })?;
        Ok(found)
    }

    /// Retained entries of `key`, oldest first, tombstones included; `NotFound` if none.
    pub fn history(&self, key: &str) -> Result<Vec<Entry>> {
        let backend = self.live()?;
        validate_key(key)?;
        let history = backend.history(key)?;
        if history.is_empty() {
            return Err(Error::not_found(key));
        }
        Ok(history)
    }

    /// The store's latest revision.
    pub fn last_revision(&self) -> Result<u64> {
        self.live()?.last_revision()
    }

    /// Reads `key`, calls `modify` with its live entry (or `None`), and writes the result
    /// with `create` (no entry retained) or `update` at the latest revision — a delete
    /// tombstone's revision included, so a concurrent re-create is never overwritten.
    /// On `Conflict` it retries with jittered exponential backoff, at most
    /// `policy.max_attempts` times. An error returned by `modify` aborts and is returned.
    pub fn read_modify_write_with(
        &self,
        key: &str,
        policy: RetryPolicy,
        modify: &mut dyn FnMut(Current<'_>) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        let backend = self.live()?;
        validate_key(key)?;
        let mut last_conflict = None;
        let written = policy.retry(|| {
            let latest = backend.latest(key)?;
            let live = latest.as_ref().filter(|e| e.is_live());
            let value = modify(live)?;
            self.check_value(&value)?;
            let value = Bytes::from(value);
            let written = match &latest {
                Some(entry) => backend.update(key, value, entry.revision, &WriteOptions::default()),
                None => backend.create(key, value, &WriteOptions::default()),
            };
            match written {
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    last_conflict = Some(e);
                    Ok(None)
                }
                other => other.map(Some),
            }
        })?;
        written.ok_or_else(|| {
            let current = last_conflict.map_or(0, |e| e.current_revision());
            Error::conflict(
                current,
                format!(
                    "read_modify_write of {key:?} gave up after {} conflicting attempts",
                    policy.max_attempts.max(1)
                ),
            )
        })
    }

    pub fn read_modify_write(
        &self,
        key: &str,
        modify: &mut dyn FnMut(Current<'_>) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        self.read_modify_write_with(key, RetryPolicy::default(), modify)
    }

    /// The hub, for a new watch with `options`.
    fn hub_for(&self, options: &WatchOptions) -> Result<&Arc<Hub>> {
        self.live()?;
        if options.start_revision == u64::MAX {
            // No revision can ever be at or after it: the watch would never deliver.
            return Err(Error::invalid(
                "start_revision 18446744073709551615 (the largest u64) can never be reached",
            ));
        }
        Ok(&self.hub)
    }

    /// Watches a key (or a prefix, with `options.prefix`); poll it with `Watch::next`.
    /// `Limit` when the store already has `max_watchers` watchers.
    pub fn watch(&self, target: &str, options: WatchOptions) -> Result<Watch> {
        self.hub_for(&options)?
            .watch(target, options, Delivery::Poll)
    }

    /// Like [`Store::watch`], but `callback` receives the events on a delivery thread,
    /// one at a time and in order, until the watch ends or is closed.
    pub fn watch_callback(
        &self,
        target: &str,
        options: WatchOptions,
        callback: impl FnMut(&Event) + Send + 'static,
    ) -> Result<Watch> {
        let callback: Callback = Box::new(callback);
        self.hub_for(&options)?
            .watch(target, options, Delivery::Callback(callback))
    }

    /// Like [`Store::watch`] (take the events with `Watch::next`), but `ready` runs on a
    /// delivery thread whenever events wait after `next` last found none: the wake-up an
    /// event loop needs, with no thread blocked per watch. `ready` should only signal.
    pub fn watch_ready(
        &self,
        target: &str,
        options: WatchOptions,
        ready: impl Fn() + Send + Sync + 'static,
    ) -> Result<Watch> {
        self.hub_for(&options)?
            .watch(target, options, Delivery::Ready(Box::new(ready)))
    }

    /// How many watchers are registered (for tests and diagnostics).
    pub fn watcher_count(&self) -> usize {
        self.hub.watcher_count()
    }

    /// Closes the store: later calls fail with `Closed`; every watch ends with
    /// CANCELED(store closed) and, when this returns, no callback of it is running and
    /// none will run — also when the store was closed already (by a callback, say).
    /// Called on a delivery thread (inside a callback) it does not wait: no callback
    /// starts after it, and running ones finish (see [`Store::when_quiet`]).
    pub fn close(&self) {
        let watchers = self.end();
        for watcher in watchers {
            watcher.quiesce_after_end();
        }
    }

    /// Runs `action` once no callback of this closed store's watches is running.
    pub fn when_quiet(&self, action: Box<dyn FnOnce() + Send>) {
        delivery::when_all_quiet(&self.end(), action);
    }

    /// Closes the store once; every call returns the callback watches the close ended.
    fn end(&self) -> Vec<Arc<Watcher>> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // The leases this store granted are revoked while everything is still up, and
            // outside the lock below: a lost callback run here may close the store too.
            self.lessor.close();
        }
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if ended.is_none() {
            // Then the hub: its feed deletes its server-side consumer while the
            // connection is still up. Neither waits for a callback.
            *ended = Some(self.hub.end_for_close());
            self.backend.close();
        }
        ended.clone().unwrap_or_default()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}
