//! [`Sleeper`]: one background thread that works, sleeps until its next deadline or until
//! woken, and works again — the shape of `mem://`'s expiry thread and of a store's lease
//! keepalive, written once.
//!
//! The thread is started on demand by the call that first needs it (a refused thread
//! fails that call, so nothing silently goes unserved), and stopped by its owner's close,
//! which waits for the round in progress (so nothing it does, such as calling a lost
//! callback, happens after the close returns), unless the close comes from the thread
//! itself. The owner holds the thread's work only weakly: the work returns `None` once
//! the owner is gone, and the thread ends.

use crate::error::{Error, ErrorKind, Result};
use crate::sync::lock;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread sleeps when it has no deadline (a wake ends it sooner).
const IDLE: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct State {
    running: Option<JoinHandle<()>>,
    started: bool,
    stopped: bool,
    /// Woken since the thread last looked: it works again at once.
    woken: bool,
}

#[derive(Default)]
pub(crate) struct Sleeper {
    state: Mutex<State>,
    changed: Condvar,
}

/// What one round of work returns: `Some(next deadline)` (or `Some(None)`: none), or
/// `None` when the owner is gone and the thread should end.
pub(crate) type Round = Option<Option<Instant>>;

impl Sleeper {
    /// Starts the thread `name` running `work` rounds, unless it runs (or was stopped).
    /// UNAVAILABLE, naming `what`, when the system refuses a thread.
    pub(crate) fn ensure_running(
        self: &Arc<Self>,
        name: &str,
        what: &str,
        mut work: impl FnMut() -> Round + Send + 'static,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        if state.started || state.stopped {
            return Ok(());
        }
        let me = self.clone();
        let running = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Some(next) = work() {
                    if !me.sleep_until(next) {
                        return;
                    }
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the {what} thread (out of threads or memory): {e}"),
                )
            })?;
        state.running = Some(running);
        state.started = true;
        Ok(())
    }

    /// Sleeps until `next` (none: a long while), a wake or a stop; false once stopped.
    fn sleep_until(&self, next: Option<Instant>) -> bool {
        let mut state = lock(&self.state);
        if !state.woken && !state.stopped {
            let sleep = next.map_or(IDLE, |at| at.saturating_duration_since(Instant::now()));
            state = (self.changed.wait_timeout(state, sleep))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.woken = false;
        !state.stopped
    }

    /// Something new to do (a deadline added): the thread works again at once.
    pub(crate) fn wake(&self) {
        lock(&self.state).woken = true;
        self.changed.notify_one();
    }

    /// Stops the thread and waits for the round it may be in (not when called from it).
    pub(crate) fn stop(&self) {
        let running = {
            let mut state = lock(&self.state);
            state.stopped = true;
            state.running.take()
        };
        self.changed.notify_one();
        if let Some(running) = running {
            if running.thread().id() != std::thread::current().id() {
                let _ = running.join();
            }
        }
    }
}
