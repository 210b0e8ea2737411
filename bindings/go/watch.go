// Watches: the events of a key or prefix on a channel.
//
// A Watcher is a ready watch of the C API (ckv_watch_ready): when events wait, one of the
// library's delivery threads calls the exported Go function, which only signals; the
// watcher's goroutine then takes the events with ckv_watch_next without waiting and sends
// them on the channel. So a thousand watchers cost no OS thread each and no goroutine
// blocked in C, and the queue, its bound (BufferSize), catch-up and CANCELED(overflow) are
// the library's own: a reader that falls behind gets the same CANCELED, with the same
// reason and message, as a C program would.

package coordkv

// #include "coordkv.h"
import "C"

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Event is one event of one watch. Data events (PUT, DELETE, PURGE, EXPIRED) carry
// Entry and, with PrevValue, Prev. For SYNCED and PROGRESS, Revision is the bookmark;
// for CANCELED it is the last revision the watch is complete through (a new watch from
// Revision+1 continues without a gap) and CancelReason says why it ended.
type Event struct {
	Kind         EventKind
	Revision     uint64
	Entry        *Entry
	Prev         *Entry
	CancelReason CancelReason
	Message      string
	// CatchUp marks a snapshot's values and SYNCED, and the events a StartRevision
	// replays: the catch-up, which the buffer bound does not count.
	CatchUp bool
	// Resync marks a fresh snapshot's values and its SYNCED, sent to a Resync watch that
	// may have missed events: they replace what the consumer had instead of adding to it.
	Resync bool
}

// WatchOptions shape a watch; the zero value is an exact-key watch from now on.
type WatchOptions struct {
	// Prefix watches every key starting with the target instead of one key.
	Prefix bool
	// StartRevision replays every retained event from this revision first.
	StartRevision uint64
	// Snapshot sends the current values first, then SYNCED.
	Snapshot bool
	// PrevValue attaches each key's previous live value to data events.
	PrevValue bool
	// IgnoreDeletes skips DELETE, PURGE and EXPIRED events.
	IgnoreDeletes bool
	// BufferSize bounds the events waiting to be read (0: the library's default).
	BufferSize int
	// ProgressInterval asks for PROGRESS bookmarks this often (0: never).
	ProgressInterval time.Duration
	// Resync answers events lost before they were read (history trimmed on a NATS
	// server) with a fresh snapshot and SYNCED, each with Event.Resync set, instead of
	// ending the watch with CANCELED(HistoryLost).
	Resync bool
	// QuietWrites also delivers quiet writes: lease keepalives and writes with the Quiet
	// option (their entries have Entry.Quiet set).
	QuietWrites bool
}

// WatchCanceledError is Err's answer when the watch was ended by the library (overflow,
// history lost, store closed, ...). errors.Is(err, ErrCanceled) holds.
type WatchCanceledError struct {
	Reason       CancelReason
	LastRevision uint64
	Message      string
}

func (e *WatchCanceledError) Error() string {
	return fmt.Sprintf("coordkv: watch canceled (%s) after revision %d: %s", e.Reason, e.LastRevision, e.Message)
}

// Is makes errors.Is(err, ErrCanceled) true.
func (e *WatchCanceledError) Is(target error) bool { return target == ErrCanceled }

// Watcher delivers a watch's events on Events until the watch ends or is closed.
type Watcher struct {
	events chan Event
	// done is closed by Close (or the context); finished when the forwarder has left.
	done     chan struct{}
	finished chan struct{}
	// ready holds a signal from the library that events wait.
	ready chan struct{}
	// userData is the ready hook's user_data, freed once the watch is closed.
	userData userData
	// store keeps the Store reachable while the watch is: its finalizer would close it.
	store *Store
	// watch is the ckv_watch handle, a value like Store.handle.
	watch *C.ckv_watch

	mu  sync.Mutex
	err error

	closeOnce   sync.Once
	releaseOnce sync.Once
}

// Watch opens a watch on key (a prefix with opts.Prefix). Events arrive on
// Watcher.Events in order; the channel is closed after the final CANCELED event, after
// Close, or when ctx is done.
func (s *Store) Watch(ctx context.Context, key string, opts WatchOptions) (*Watcher, error) {
	if ctx == nil {
		// Checked before anything is opened: nothing is left behind.
		return nil, newError(StatusInvalidArgument, "ctx is nil; pass context.Background() for none")
	}
	if opts.BufferSize < 0 || opts.ProgressInterval < 0 {
		return nil, newError(StatusInvalidArgument, "BufferSize and ProgressInterval must not be negative")
	}
	var options C.ckv_watch_options
	C.ckv_watch_options_init(&options)
	options.prefix = C.bool(opts.Prefix)
	options.start_revision = C.uint64_t(opts.StartRevision)
	options.snapshot = C.bool(opts.Snapshot)
	options.prev_value = C.bool(opts.PrevValue)
	options.ignore_deletes = C.bool(opts.IgnoreDeletes)
	options.resync = C.bool(opts.Resync)
	options.quiet_writes = C.bool(opts.QuietWrites)
	if opts.BufferSize > 0 {
		options.buffer_size = C.size_t(opts.BufferSize)
	}
	if opts.ProgressInterval > 0 {
		options.progress_interval_ms = C.uint64_t(max(1, opts.ProgressInterval.Milliseconds()))
	}
	w := &Watcher{
		events:   make(chan Event),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
		ready:    make(chan struct{}, 1),
		store:    s,
	}
	w.userData = newUserData(w)
	k, kn := cText(key)
	watch, err := storeCall(s, asIs[*C.ckv_watch], func(store *C.ckv_store, watch **C.ckv_watch, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_watch_ready(store, k, kn, &options, readyCallback, w.userData.block, watch, cerr)
	})
	if err != nil {
		w.userData.free() // no watch, so no callback
		return nil, err
	}
	w.watch = watch
	go w.forward()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				w.fail(ctx.Err())
				w.Close()
			case <-w.finished:
			}
		}()
	}
	return w, nil
}

// Events is the channel the watch's events arrive on, closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.events }

// Err says why the channel was closed: nil while it is open and after Close, the
// context's error if the context ended it, or a *WatchCanceledError if the library
// ended the watch.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close ends the watch. When it returns no event is sent anymore and the channel is
// closed. Safe from any goroutine, and more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { close(w.done) })
	w.release()
	<-w.finished
	return nil
}

// release closes the C watch and then frees the ready hook's user data: it runs on a
// goroutine, never on a library delivery thread, so when ckv_watch_close returns the
// hook is not running and is never called again (docs/design.md, "Callbacks, close and
// fork").
func (w *Watcher) release() {
	w.releaseOnce.Do(func() {
		C.ckv_watch_close(w.watch)
		w.userData.free()
	})
}

// forward takes the waiting events whenever the library signals and sends them on the
// channel, until the final CANCELED, the end of the watch, or Close.
func (w *Watcher) forward() {
	defer close(w.finished)
	defer close(w.events)
	for {
		select {
		case <-w.ready:
		case <-w.done:
			return
		}
		for {
			var event *C.ckv_event
			var cerr *C.ckv_error
			// The next waiting event, or CKV_TIMEOUT at once when none waits.
			status := C.ckv_watch_next(w.watch, 0, &event, &cerr)
			if status == C.CKV_TIMEOUT {
				C.ckv_error_free(cerr)
				break // none waits: the library signals again when one does
			}
			if status != C.CKV_OK {
				// CLOSED: ended (its CANCELED was sent already) or closed.
				if err := errorFrom(status, cerr); status != C.CKV_CLOSED {
					w.fail(err)
				}
				w.release()
				return
			}
			e := eventFromC(event)
			C.ckv_event_free(event)
			select {
			case w.events <- e:
			case <-w.done:
				return
			}
			if e.Kind == EventCanceled {
				w.fail(&WatchCanceledError{Reason: e.CancelReason, LastRevision: e.Revision, Message: e.Message})
				// The library sends nothing more: free its side now rather than at Close.
				w.release()
				return
			}
		}
	}
}

// fail records why the channel closes, unless a reason is known already.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func eventFromC(event *C.ckv_event) Event {
	e := Event{
		Kind:         EventKind(C.ckv_event_kind(event)),
		Revision:     uint64(C.ckv_event_revision(event)),
		Entry:        optionalEntry(C.ckv_event_entry(event)),
		Prev:         optionalEntry(C.ckv_event_prev_entry(event)),
		CancelReason: CancelReason(C.ckv_event_cancel_reason(event)),
		CatchUp:      bool(C.ckv_event_is_catch_up(event)),
		Resync:       bool(C.ckv_event_is_resync(event)),
	}
	if message := C.ckv_event_message(event); message != nil {
		e.Message = C.GoString(message)
	}
	return e
}

// optionalEntry copies a borrowed entry, or is nil when there is none.
func optionalEntry(entry *C.ckv_entry) *Entry {
	if entry == nil {
		return nil
	}
	copied := entryFromC(entry)
	return &copied
}
