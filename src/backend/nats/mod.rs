//! `nats://`: a JetStream KV bucket as the store.
//!
//! ```text
//!  Store (blocking caller thread)
//!    │  block_on(call) — bounded by request_timeout, cut short by a permission violation
//!    ▼
//!  NatsBackend ── writes: JetStream publish to $KV.<bucket>.<nats key> (+ CAS headers) → ack seq
//!             ── latest: direct get "last message for subject" (one round trip)
//!             ── scan/history: ephemeral ordered consumer with a server-side subject filter
//!    │
//!  async-nats client (its own connection task on the library runtime, reconnects by itself)
//! ```
//!
//! Revisions are stream sequences, and the bucket's KV stream already keeps per-key history,
//! roll-up purges and compare-and-set on the last sequence of a subject, so each operation
//! is one publish or one get — the same primitives `mem://` emulates, with the same rules.
//! Keys travel in their NATS spelling (`key::to_nats`); a NATS key that is not a coordkv
//! spelling (written by some other client) is skipped by `scan`, since it names no key.
//!
//! Nothing here caches connection state: every call goes through the live client, so after
//! a server restart the same handle works again as soon as async-nats has reconnected.
//! All NATS failures become an `ErrorKind` in one place, [`map_error`].
//!
//! The parts: `connect` (server URLs, auth, TLS, version gate, permission watchdog, the
//! bucket), `kv` (the `Backend` operations), `codec` (what a message's headers say),
//! `errors` (the mapping above), `feed` (the watch feed over one live consumer), `leases`
//! (TTL keys and lease records).

mod codec;
mod connect;
mod errors;
pub mod feed;
mod kv;
mod leases;

pub use connect::server_urls;
pub use errors::map_error;

use crate::error::{Error, ErrorKind, Result};
use async_nats::jetstream;
use async_nats::Client;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;

use connect::Violations;

pub struct NatsBackend {
    runtime: Handle,
    client: Client,
    js: jetstream::Context,
    bucket: jetstream::kv::Store,
    /// `$KV.<bucket>.` (or the bucket's put prefix): a write's subject is this + NATS key.
    put_prefix: String,
    /// `$KV.<bucket>.`: a read's subject is this + NATS key.
    read_prefix: String,
    request_timeout: Duration,
    violations: Arc<Violations>,
    /// Bumped each time the client (re)connects: the watch feed recreates its consumer at
    /// once instead of waiting for missed heartbeats.
    connects: watch::Sender<u64>,
    /// What the server said it is at connect: decides the capabilities beyond 2.10's.
    server_version: connect::ServerVersion,
    server_version_text: String,
    closed: AtomicBool,
    /// Revisions kept per key: above 1, the server raises short TTLs to the marker TTL.
    history: u32,
    /// The marker TTL to set when this store switches TTLs on for the bucket.
    marker_ttl_wanted: Duration,
    /// The bucket's marker TTL once TTLs are known to be on (see `leases`).
    marker_ttl_in_effect: Mutex<Option<Duration>>,
}

impl NatsBackend {
    /// Runs one operation on the runtime from the caller's thread, bounded by the request
    /// timeout.
    fn call<T>(&self, doing: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.request_timeout;
        self.guarded(doing, async move {
            tokio::time::timeout(limit, op)
                .await
                .unwrap_or_else(|_| Err(errors::no_answer("the server", limit)))
        })
    }

    /// Runs `op` on the runtime, cut short by a permission violation that concerns this
    /// bucket (the server reports those asynchronously, not as the call's reply).
    pub(crate) fn guarded<T>(&self, doing: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        crate::runtime::refuse_on_worker()?;
        let mut violations = self.violations.seen.subscribe();
        let denied = async {
            loop {
                if violations.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                let message = self.violations.last();
                if message.contains(self.bucket.stream_name.as_str())
                    || message.contains(self.read_prefix.as_str())
                    || message.contains("_INBOX")
                    || message.contains("$JS.API")
                {
                    return message;
                }
            }
        };
        let result = self.runtime.block_on(async {
            tokio::select! {
                done = op => done.map_err(|e| e.context(doing)),
                message = denied => Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{doing}: {message}"),
                )),
            }
        });
        // A call that fails because the store was closed under it (its connection went
        // with it) says so, whatever the client made of the broken request.
        match result {
            Err(_) if self.closed.load(Ordering::Acquire) => Err(Error::closed("store")),
            other => other,
        }
    }
}

/// What the watch feed (`feed`) reads the bucket with.
impl NatsBackend {
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    pub(crate) fn stream(&self) -> &jetstream::stream::Stream {
        &self.bucket.stream
    }

    /// `$KV.<bucket>.`: a message's subject is this + the NATS key.
    pub(crate) fn read_prefix(&self) -> &str {
        &self.read_prefix
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The latest message on `nats_key` (a key's NATS spelling), bounded by the request
    /// timeout; `None` when its subject holds nothing.
    pub(crate) async fn latest_for_feed(
        &self,
        nats_key: &str,
    ) -> Result<Option<crate::entry::Entry>> {
        let limit = self.request_timeout;
        match tokio::time::timeout(limit, self.latest_async(nats_key, nats_key)).await {
            Ok(latest) => latest,
            Err(_) => Err(errors::no_answer("the server", limit)),
        }
    }

    /// Changes each time the client connects again after losing its connection.
    pub(crate) fn connects(&self) -> watch::Receiver<u64> {
        self.connects.subscribe()
    }
}
