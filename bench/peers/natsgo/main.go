// The nats.go peer: JetStream KV through the official Go client's jetstream package, the
// way a Go service would use it — one connection, one KeyValue shared by every goroutine,
// watches read from their Updates channel. It is the yardstick for coordkv's Go binding.
//
// Speaks the driver protocol of bench/README.md: `natsgo_driver WORKLOAD --url U
// --bucket B --n N --threads T --value-size S --watchers W [--sync]`, one JSON result line.
// The flags, the result line and the workload loops are bench/common/go (package
// harness), shared with the coordkv Go driver; this file is the client's part.
package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"coordkv.local/bench/harness"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	ctx = context.Background()
	js  jetstream.JetStream
)

// kvClient is the KeyValue as the shared loops call it.
type kvClient struct{ kv jetstream.KeyValue }

func (c kvClient) Key(space string, i int) string { return fmt.Sprintf("%s.k%08d", space, i) }

func (c kvClient) Put(key string, val []byte) (uint64, error) { return c.kv.Put(ctx, key, val) }

func (c kvClient) Get(key string) ([]byte, error) {
	e, err := c.kv.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

func (c kvClient) Update(key string, val []byte, rev uint64) (uint64, error) {
	return c.kv.Update(ctx, key, val, rev)
}

type sighting struct {
	rev uint64
	at  time.Time
}

func (c kvClient) WatchLatency() {
	w, err := c.kv.Watch(ctx, "bench.>")
	harness.Check(err)
	seen := make(chan sighting, 1024)
	go func() {
		for e := range w.Updates() {
			if e == nil { // end of the initial values
				continue
			}
			seen <- sighting{e.Revision(), time.Now()}
		}
		close(seen)
	}()
	lat, elapsed := harness.TimeWatch(c, func(rev uint64) time.Time {
		for {
			select {
			case s, ok := <-seen:
				if !ok {
					harness.Fail(fmt.Errorf("watcher stopped before revision %d", rev))
				}
				if s.rev >= rev {
					return s.at
				}
			case <-time.After(30 * time.Second):
				harness.Fail(fmt.Errorf("no event for revision %d", rev))
			}
		}
	})
	harness.Check(w.Stop())
	harness.Report(harness.A.N, elapsed, lat, nil)
}

// nats-server 2.15 caps every stream at 1000 consumers unless the stream says otherwise,
// and each kv.Watch is its own consumer: raise the bucket stream's limit so the run
// measures the client instead of stopping at the cap (reported as "raised_max_consumers").
func raiseMaxConsumers() int {
	a := harness.A
	if a.Watchers < 1000 {
		return 0
	}
	stream, err := js.Stream(ctx, "KV_"+a.Bucket)
	harness.Check(err)
	info, err := stream.Info(ctx)
	harness.Check(err)
	config := info.Config
	config.MaxConsumers = a.Watchers + 16
	_, err = js.UpdateStream(ctx, config)
	harness.Check(err)
	return a.Watchers + 16
}

func (c kvClient) WatchFanout() {
	a := harness.A
	raised := raiseMaxConsumers()
	watchers := make([]jetstream.KeyWatcher, a.Watchers)
	watch := func(i int) {
		w, err := c.kv.Watch(ctx, "bench.>")
		harness.Check(err)
		watchers[i] = w
	}
	doneAt := make([]time.Time, a.Watchers)
	var done sync.WaitGroup
	follow := func() {
		for i, w := range watchers {
			done.Add(1)
			go func() {
				defer done.Done()
				got := 0
				for e := range w.Updates() {
					if e == nil {
						continue
					}
					got++
					if got == a.N {
						doneAt[i] = time.Now()
						return
					}
				}
			}()
		}
	}
	lastEvent := func(start time.Time) time.Time {
		done.Wait()
		last := start
		for i, at := range doneAt {
			if at.IsZero() {
				harness.Fail(fmt.Errorf("watcher %d stopped early", i))
			}
			if at.After(last) {
				last = at
			}
		}
		return last
	}
	harness.Fanout(c, watch, follow, lastEvent, map[string]any{"raised_max_consumers": raised})
}

func main() {
	harness.Parse("nats.go")
	a := harness.A
	if !harness.Known() {
		harness.Unavailable("no " + a.Workload + " workload for nats.go")
		return
	}
	if !strings.HasPrefix(a.URL, "nats://") {
		harness.Unavailable("nats.go needs a NATS server, not " + a.URL)
		return
	}
	nc, err := nats.Connect(a.URL)
	harness.Check(err)
	defer nc.Close()
	js, err = jetstream.New(nc)
	harness.Check(err)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: a.Bucket, History: 16, Storage: jetstream.FileStorage, Replicas: 1,
	})
	harness.Check(err)
	harness.Run(kvClient{kv}, "bench.counter")
	_ = js.DeleteKeyValue(ctx, a.Bucket)
}
