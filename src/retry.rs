//! Retrying a lost compare-and-swap: [`RetryPolicy`] and the one retry loop every
//! compare-and-swap composition uses (`read_modify_write` in the store, `create` over a
//! tombstone on NATS), and [`jitter`], which spreads retries (and, later, keepalives) so
//! that clients that collided once do not collide again in lockstep.

use crate::error::Result;
use std::time::Duration;

/// How a lost compare-and-swap is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// `read_modify_write`'s: many short attempts, since a lost race usually means the
    /// other writer has already finished.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 200,
            initial_backoff: Duration::from_micros(20),
            max_backoff: Duration::from_millis(20),
        }
    }
}

impl RetryPolicy {
    /// Retries at once, without sleeping: for loops whose every attempt starts with a
    /// fresh read that already waited for the server.
    pub(crate) const fn immediate(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// Runs `attempt` until it returns `Some`, at most `max_attempts` times (at least
    /// once), sleeping a jittered, doubling backoff between attempts. `Ok(None)` from an
    /// attempt means it lost a race and may be tried again; an error ends the loop.
    /// `Ok(None)` overall means every attempt lost.
    pub(crate) fn retry<T>(
        &self,
        mut attempt: impl FnMut() -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let mut backoff = self.initial_backoff;
        for tried in 0..self.max_attempts.max(1) {
            if tried > 0 && !backoff.is_zero() {
                std::thread::sleep(jitter(backoff));
                backoff = (backoff * 2).min(self.max_backoff);
            }
            if let Some(done) = attempt()? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }
}

/// A uniformly random duration in `[0, max]`, from a per-thread xorshift generator.
pub(crate) fn jitter(max: Duration) -> Duration {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1
        });
    }
    let r = STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    let nanos = max.as_nanos().max(1) as u64;
    Duration::from_nanos(r % (nanos + 1))
}
