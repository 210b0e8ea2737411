package coordkv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// On NATS events arrive asynchronously: every receive has a generous bound instead of
// expecting an event at once.
const eventWait = 30 * time.Second

func recv(t *testing.T, w *coordkv.Watcher) coordkv.Event {
	t.Helper()
	for {
		select {
		case e, ok := <-w.Events():
			if !ok {
				t.Fatalf("channel closed early (Err: %v)", w.Err())
			}
			if e.Kind != coordkv.EventProgress {
				return e
			}
		case <-time.After(eventWait):
			t.Fatal("no event within the wait")
		}
	}
}

func mustWatch(t *testing.T, s *coordkv.Store, key string, opts coordkv.WatchOptions) *coordkv.Watcher {
	t.Helper()
	w, err := s.Watch(context.Background(), key, opts)
	if err != nil {
		t.Fatalf("Watch(%q): %v", key, err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWatchDeliversInOrderOnAChannel(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		w := mustWatch(t, s, "/ch/", coordkv.WatchOptions{Prefix: true})
		var want []uint64
		for i := 0; i < 50; i++ {
			want = append(want, mustPut(t, s, fmt.Sprintf("/ch/%d", i), "v"))
		}
		mustPut(t, s, "/elsewhere", "x")
		for i, rev := range want {
			e := recv(t, w)
			if e.Kind != coordkv.EventPut || e.Revision != rev || e.Entry.Key != fmt.Sprintf("/ch/%d", i) {
				t.Fatalf("event %d = %+v, want PUT at %d", i, e, rev)
			}
		}
	})
}

func TestWatchSnapshotSyncedThenLive(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		a := mustPut(t, s, "/sn/a", "1")
		b := mustPut(t, s, "/sn/b", "2")
		w := mustWatch(t, s, "/sn/", coordkv.WatchOptions{Prefix: true, Snapshot: true})
		if e := recv(t, w); e.Entry == nil || e.Entry.Key != "/sn/a" || e.Revision != a {
			t.Fatalf("first = %+v", e)
		}
		if e := recv(t, w); e.Entry == nil || e.Entry.Key != "/sn/b" || e.Revision != b {
			t.Fatalf("second = %+v", e)
		}
		if e := recv(t, w); e.Kind != coordkv.EventSynced || e.Revision < b {
			t.Fatalf("third = %+v, want SYNCED >= %d", e, b)
		}
		c := mustPut(t, s, "/sn/c", "3")
		if e := recv(t, w); e.Kind != coordkv.EventPut || e.Revision != c {
			t.Fatalf("live = %+v", e)
		}
		empty := mustWatch(t, s, "/none/", coordkv.WatchOptions{Prefix: true, Snapshot: true})
		if e := recv(t, empty); e.Kind != coordkv.EventSynced {
			t.Fatalf("empty range: %+v", e)
		}
	})
}

func TestWatchExactReplayPrevAndIgnoreDeletes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		first := mustPut(t, s, "/k", "1")
		mustPut(t, s, "/k/child", "no")
		mustPut(t, s, "/kk", "no")
		if _, err := s.Delete("/k", 0); err != nil {
			t.Fatal(err)
		}
		third := mustPut(t, s, "/k", "3")
		replay := mustWatch(t, s, "/k", coordkv.WatchOptions{StartRevision: first})
		kinds := []coordkv.EventKind{recv(t, replay).Kind, recv(t, replay).Kind, recv(t, replay).Kind}
		if kinds[0] != coordkv.EventPut || kinds[1] != coordkv.EventDelete || kinds[2] != coordkv.EventPut {
			t.Fatalf("replay kinds = %v", kinds)
		}
		live := mustWatch(t, s, "/k", coordkv.WatchOptions{PrevValue: true, IgnoreDeletes: true})
		fourth := mustPut(t, s, "/k", "4")
		if _, err := s.Delete("/k", 0); err != nil {
			t.Fatal(err)
		}
		fifth := mustPut(t, s, "/k", "5")
		e := recv(t, live)
		if e.Revision != fourth || e.Prev == nil || e.Prev.Revision != third {
			t.Fatalf("with prev: %+v", e)
		}
		e = recv(t, live)
		if e.Revision != fifth || e.Prev != nil {
			t.Fatalf("after a delete (ignored, no live prev): %+v", e)
		}
	})
}

func TestWatchContextCancelClosesTheChannel(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := s.Watch(ctx, "/ctx", coordkv.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case _, ok := <-w.Events():
			for ok {
				_, ok = <-w.Events()
			}
		case <-time.After(eventWait):
			t.Fatal("the channel stayed open after the context ended")
		}
		if !errors.Is(w.Err(), context.Canceled) {
			t.Fatalf("Err = %v, want context.Canceled", w.Err())
		}
		w.Close()
	})
}

func TestWatchCloseFromAnotherGoroutineWhileEventsFlow(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		w := mustWatch(t, s, "/flow/", coordkv.WatchOptions{Prefix: true})
		stop := make(chan struct{})
		var writers sync.WaitGroup
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Put(fmt.Sprintf("/flow/%d", i%10), []byte("v")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		// A reader goroutine drains the channel while this goroutine closes the watch.
		first := make(chan struct{})
		read := make(chan error, 1)
		go func() {
			var last uint64
			for e := range w.Events() {
				if e.Kind == coordkv.EventPut && e.Revision <= last {
					read <- fmt.Errorf("revision %d after %d", e.Revision, last)
					return
				}
				if last == 0 {
					close(first)
				}
				last = e.Revision
			}
			read <- nil
		}()
		select {
		case <-first:
		case <-time.After(eventWait):
			t.Fatal("no event within the wait")
		}
		w.Close()
		// Close returned: the channel is closed, so the reader's range ends.
		if err := <-read; err != nil {
			t.Fatal(err)
		}
		close(stop)
		writers.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWatchOverflowCancelsWithTheLastRevision(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		slow := mustWatch(t, s, "/of/", coordkv.WatchOptions{Prefix: true, BufferSize: 4})
		fast := mustWatch(t, s, "/of/", coordkv.WatchOptions{Prefix: true})
		var want []uint64
		for i := 0; i < 40; i++ {
			want = append(want, mustPut(t, s, fmt.Sprintf("/of/%d", i), "v"))
		}
		for _, rev := range want {
			if e := recv(t, fast); e.Revision != rev {
				t.Fatalf("fast watcher got %d, want %d", e.Revision, rev)
			}
		}
		var last uint64
		for {
			e := recv(t, slow)
			if e.Kind == coordkv.EventCanceled {
				if e.CancelReason != coordkv.CancelOverflow || e.Revision != last {
					t.Fatalf("CANCELED = %+v, want overflow after %d", e, last)
				}
				// The core's own CANCELED, word for word as C and Python get it.
				if !strings.HasPrefix(e.Message, "the watcher did not keep up: ") {
					t.Fatalf("CANCELED message = %q, want the core's overflow message", e.Message)
				}
				break
			}
			if last != 0 && e.Revision <= last {
				t.Fatalf("out of order: %d after %d", e.Revision, last)
			}
			last = e.Revision
		}
		if _, ok := <-slow.Events(); ok {
			t.Fatal("an event after CANCELED")
		}
		var canceled *coordkv.WatchCanceledError
		if !errors.As(slow.Err(), &canceled) || !errors.Is(slow.Err(), coordkv.ErrCanceled) {
			t.Fatalf("Err = %v", slow.Err())
		}
		// Resuming from last+1 continues without a gap.
		resumed := mustWatch(t, s, "/of/", coordkv.WatchOptions{Prefix: true, StartRevision: last + 1})
		if e := recv(t, resumed); e.Revision != last+1 {
			t.Fatalf("resumed at %d, want %d", e.Revision, last+1)
		}
	})
}

func TestClosingTheStoreEndsWatchers(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, coordkv.Config{})
			w, err := s.Watch(context.Background(), "/end/", coordkv.WatchOptions{Prefix: true})
			if err != nil {
				t.Fatal(err)
			}
			rev := mustPut(t, s, "/end/a", "1")
			if e := recv(t, w); e.Revision != rev {
				t.Fatalf("%+v", e)
			}
			s.Close()
			e := recv(t, w)
			if e.Kind != coordkv.EventCanceled || e.CancelReason != coordkv.CancelStoreClosed || e.Revision < rev {
				t.Fatalf("after store close: %+v", e)
			}
			if _, ok := <-w.Events(); ok {
				t.Fatal("channel open after CANCELED")
			}
			if _, err := s.Watch(context.Background(), "/end/", coordkv.WatchOptions{}); !errors.Is(err, coordkv.ErrClosed) {
				t.Fatalf("Watch on a closed store: %v", err)
			}
		})
	}
}

func threads(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

func TestAThousandWatchersDoNotMeanAThousandThreads(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		mustPut(t, s, "/warm", "v") // the library's threads exist before counting
		w := mustWatch(t, s, "/warm", coordkv.WatchOptions{})
		mustPut(t, s, "/warm", "v")
		recv(t, w)
		before := threads(t)
		var watchers []*coordkv.Watcher
		for i := 0; i < 1000; i++ {
			watchers = append(watchers, mustWatch(t, s, fmt.Sprintf("/t/%d", i), coordkv.WatchOptions{}))
		}
		for i := 0; i < 1000; i++ {
			mustPut(t, s, fmt.Sprintf("/t/%d", i), "v")
		}
		for i, w := range watchers {
			if e := recv(t, w); e.Entry == nil || e.Entry.Key != fmt.Sprintf("/t/%d", i) {
				t.Fatalf("watcher %d got %+v", i, e)
			}
		}
		if after := threads(t); after-before > 32 {
			t.Fatalf("threads grew from %d to %d for 1,000 watchers", before, after)
		}
	})
}

func TestWatchBadArguments(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		for _, key := range []string{"no-slash", "/trailing/", "/a//b", ""} {
			if _, err := s.Watch(context.Background(), key, coordkv.WatchOptions{}); !errors.Is(err, coordkv.ErrInvalidArgument) {
				t.Fatalf("Watch(%q): %v", key, err)
			}
		}
		if _, err := s.Watch(context.Background(), "/k", coordkv.WatchOptions{Snapshot: true, StartRevision: 2}); !errors.Is(err, coordkv.ErrInvalidArgument) {
			t.Fatalf("snapshot + start revision: %v", err)
		}
		if _, err := s.Watch(context.Background(), "/k", coordkv.WatchOptions{BufferSize: -1}); !errors.Is(err, coordkv.ErrInvalidArgument) {
			t.Fatalf("negative buffer: %v", err)
		}
	})
}

func TestWatchResyncReplacesHistoryLostWithAMarkedSnapshot(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := b.open(t, coordkv.Config{History: 2})
		first := mustPut(t, s, "/h/a", "1")
		mustPut(t, s, "/h/a", "2")
		third := mustPut(t, s, "/h/a", "3") // first is no longer retained
		w := mustWatch(t, s, "/h/", coordkv.WatchOptions{Prefix: true, StartRevision: first, Resync: true})
		if e := recv(t, w); e.Kind != coordkv.EventPut || !e.Resync || e.Revision != third {
			t.Fatalf("resync value: %+v", e)
		}
		if e := recv(t, w); e.Kind != coordkv.EventSynced || !e.Resync {
			t.Fatalf("resync end: %+v", e)
		}
		live := mustPut(t, s, "/h/a", "4")
		if e := recv(t, w); e.Revision != live || e.Resync {
			t.Fatalf("live after resync: %+v", e)
		}
	})
}

// Issue 9: a nil context is refused before anything is opened (it used to panic after
// the C watch was opened, leaving it and its goroutine behind).
func TestWatchWithNilContextIsRefusedAndLeavesNothing(t *testing.T) {
	store, err := coordkv.OpenConfig(map[string]any{"url": "mem://", "max_watchers": 1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	//lint:ignore SA1012 a nil context is what this test is about
	w, err := store.Watch(nil, "/a", coordkv.WatchOptions{}) //nolint:staticcheck
	if w != nil || !errors.Is(err, coordkv.ErrInvalidArgument) {
		t.Fatalf("Watch(nil ctx) = %v, %v; want nil, ErrInvalidArgument", w, err)
	}
	// The store's only watcher slot is still free.
	w, err = store.Watch(context.Background(), "/a", coordkv.WatchOptions{})
	if err != nil {
		t.Fatalf("a watch after the refused one: %v", err)
	}
	w.Close()
}

// Issue 9: a Watcher keeps its Store reachable, so the Store's finalizer cannot close it
// (and end the watch with CANCELED(store closed)) while the watch is in use.
func TestWatcherKeepsItsStoreAlive(t *testing.T) {
	w := func() *coordkv.Watcher {
		store, err := coordkv.Open("mem://")
		if err != nil {
			t.Fatal(err)
		}
		w, err := store.Watch(context.Background(), "/a", coordkv.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}()
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case e, ok := <-w.Events():
		t.Fatalf("the watch ended while in use: %v %v (Err: %v)", e, ok, w.Err())
	case <-time.After(200 * time.Millisecond):
	}
	w.Close()
}
