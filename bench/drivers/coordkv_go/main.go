// coordkv through its Go binding (bindings/go, cgo): the same workloads as the nats.go
// peer, written the way a Go user of the binding would — one Store shared by every
// goroutine, blocking calls. The harness links it against the library it built through
// CGO_LDFLAGS (see bench/run.py), so it measures the same libcoordkv as the C driver.
//
// The flags, the result line and the workload loops are bench/common/go (package
// harness), shared with the nats.go peer; this file is the binding's part. A workload the
// binding or its backend cannot run yet prints an "unavailable" line.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"coordkv.local/bench/harness"
	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// store is the binding as the shared loops call it.
type store struct{ s *coordkv.Store }

func (st store) Key(space string, i int) string { return fmt.Sprintf("/%s/k%08d", space, i) }

func (st store) Put(key string, val []byte) (uint64, error) { return st.s.Put(key, val) }

func (st store) Get(key string) ([]byte, error) {
	e, err := st.s.Get(key)
	if err != nil {
		return nil, err
	}
	return e.Value, nil
}

func (st store) Update(key string, val []byte, rev uint64) (uint64, error) {
	return st.s.Update(key, val, rev)
}

// seen follows one watcher's channel: data events counted, the newest revision and when.
type seen struct {
	mu     sync.Mutex
	cond   *sync.Cond
	want   int
	got    int
	rev    uint64
	at     time.Time
	doneAt time.Time
	failed bool
}

func follow(w *coordkv.Watcher, want int) *seen {
	s := &seen{want: want}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		for e := range w.Events() {
			now := time.Now()
			s.mu.Lock()
			if e.Kind == coordkv.EventCanceled {
				s.failed = true
			} else if e.Entry != nil && s.got < s.want {
				s.got++
				s.rev, s.at = e.Revision, now
				if s.got == s.want {
					s.doneAt = now
				}
			}
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}()
	return s
}

func watchBench(s *coordkv.Store, want int) (*coordkv.Watcher, *seen) {
	w, err := s.Watch(context.Background(), "/bench/", coordkv.WatchOptions{Prefix: true, BufferSize: want + 1024})
	harness.Check(err)
	return w, follow(w, want)
}

func (st store) WatchLatency() {
	a := harness.A
	w, sn := watchBench(st.s, harness.WarmupCount(a.N)+a.N)
	defer w.Close()
	lat, elapsed := harness.TimeWatch(st, func(rev uint64) time.Time {
		sn.mu.Lock()
		for sn.rev < rev && !sn.failed {
			sn.cond.Wait()
		}
		at, failed := sn.at, sn.failed
		sn.mu.Unlock()
		if failed {
			harness.Fail(fmt.Errorf("the watch ended before revision %d", rev))
		}
		return at
	})
	harness.Report(a.N, elapsed, lat, nil)
}

func (st store) WatchFanout() {
	a := harness.A
	watchers := make([]*coordkv.Watcher, a.Watchers)
	seens := make([]*seen, a.Watchers)
	watch := func(i int) { watchers[i], seens[i] = watchBench(st.s, a.N) }
	lastEvent := func(start time.Time) time.Time {
		last := start
		for _, sn := range seens {
			sn.mu.Lock()
			for sn.got < sn.want && !sn.failed {
				sn.cond.Wait()
			}
			if sn.failed {
				harness.Fail(errors.New("a watcher ended early"))
			}
			if sn.doneAt.After(last) {
				last = sn.doneAt
			}
			sn.mu.Unlock()
		}
		for _, w := range watchers {
			w.Close()
		}
		return last
	}
	harness.Fanout(st, watch, nil, lastEvent, map[string]any{"server_consumers": 1})
}

func open() (*coordkv.Store, error) {
	a := harness.A
	if strings.HasPrefix(a.URL, "nats://") {
		return coordkv.OpenConfig(coordkv.Config{
			URL: a.URL, Bucket: a.Bucket, History: 16, Storage: "file",
		})
	}
	return coordkv.Open(a.URL)
}

func main() {
	harness.Parse("coordkv-go")
	if harness.A.Workload == "dispatch" {
		harness.Unavailable("dispatch is measured through the C driver")
		return
	}
	if !harness.Known() {
		harness.Unavailable("no " + harness.A.Workload + " workload for coordkv-go")
		return
	}
	s, err := open()
	if errors.Is(err, coordkv.ErrUnsupported) {
		harness.Unavailable(err.Error())
		return
	}
	harness.Check(err)
	defer s.Close()
	harness.Run(store{s}, "/bench/counter")
}
