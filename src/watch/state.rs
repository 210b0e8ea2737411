//! One watcher's state under its lock: the bounded queue (with how many queued events are
//! exempt from the bound: catch-up and backlog), where the watcher is in its life (live,
//! resyncing, ended, closed, finished), and who is delivering or waiting right now.

use super::{CancelReason, Event, EventKind};
use std::collections::VecDeque;
use std::thread::ThreadId;

/// A queued event, and whether it counts against the watcher's buffer: catch-up (a
/// snapshot, a replay, a resync) and the backlog read after a break do not.
pub(super) struct Queued {
    pub(super) event: Event,
    pub(super) exempt: bool,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) queue: VecDeque<Queued>,
    /// How many queued events are exempt from the buffer bound.
    pub(super) exempt: usize,
    /// Live events may have been lost and a fresh snapshot is on its way: events are not
    /// queued (the snapshot covers them) and no PROGRESS is sent until it arrives.
    pub(super) resyncing: bool,
    /// The final CANCELED is queued: nothing more will be.
    pub(super) ended: bool,
    /// The owner closed the watch: nothing more is delivered.
    pub(super) closed: bool,
    /// The final CANCELED was taken.
    pub(super) finished: bool,
    /// Every matching event up to here is queued (or was delivered).
    pub(super) last_revision: u64,
    /// A delivery thread owns this watcher until it puts it back.
    pub(super) scheduled: bool,
    /// The thread inside the callback right now.
    pub(super) running_on: Option<ThreadId>,
    /// Threads blocked on `Watcher::changed`: a change wakes them only when there are
    /// some, so an unread poll watch costs no futex call per event.
    pub(super) waiters: usize,
    /// A ready watch's owner found the queue empty since the hook last ran: the next
    /// queued event runs the hook again.
    pub(super) armed: bool,
    /// Run once no callback is running (see `delivery::when_all_quiet`).
    pub(super) after_quiet: Vec<Box<dyn FnOnce() + Send>>,
}

impl Inner {
    pub(super) fn live_len(&self) -> usize {
        self.queue.len() - self.exempt
    }

    pub(super) fn push(&mut self, event: Event, exempt: bool) {
        self.exempt += usize::from(exempt);
        self.queue.push_back(Queued { event, exempt });
    }

    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.exempt = 0;
    }

    pub(super) fn end(&mut self, reason: CancelReason, last_revision: u64, message: String) {
        self.last_revision = last_revision;
        self.ended = true;
        self.push(Event::canceled(reason, last_revision, message), false);
    }

    pub(super) fn take(&mut self) -> Option<Event> {
        let Queued { event, exempt } = self.queue.pop_front()?;
        self.exempt -= usize::from(exempt);
        if event.kind == EventKind::Canceled {
            self.finished = true;
        }
        Some(event)
    }
}
