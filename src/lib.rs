//! coordkv: a cluster-coordination core behind a C ABI.
//!
//! ```text
//!  C / Python (ctypes) / Go (cgo)
//!        │  include/coordkv.h
//!  src/ffi ── the only extern "C": validate pointers, call the core, map errors
//!        │
//!  Store ── keys validated, values size-checked, compositions (get, rmw, delete_prefix)
//!        │
//!  Backend ── mem:// (in-process JetStream-KV emulation) | nats:// (JetStream KV)
//!        │  feed: every write, in revision order
//!  watch::Hub ── registry by path segment, bounded per-watcher queues, delivery pool
//! ```
//!
//! The core (everything but `ffi`) is plain safe Rust and knows nothing of C; the
//! runtime module owns the single tokio runtime that network backends run on.

pub mod backend;
pub mod config;
pub mod entry;
pub mod error;
pub mod key;
pub mod lease;
mod per_process;
pub mod retry;
pub mod runtime;
mod sleeper;
pub mod store;
mod sync;
pub mod watch;

pub mod ffi;

pub use backend::Capability;
pub use config::Config;
pub use entry::{Entry, Operation, WriteOptions};
pub use error::{Error, ErrorKind, Result};
pub use lease::{Lease, LeaseInfo, LeaseOptions};
pub use retry::RetryPolicy;
pub use store::Store;
pub use watch::{CancelReason, Event, EventKind, Watch, WatchOptions};

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
