// The nats.go peer: JetStream KV through the official Go client's jetstream package, the
// way a Go service would use it — one connection, one KeyValue shared by every goroutine,
// watches read from their Updates channel. It is the yardstick for coordkv's Go binding.
//
// Speaks the driver protocol of bench/README.md: `natsgo_driver WORKLOAD --url U
// --bucket B --n N --threads T --value-size S --watchers W [--sync]`, one JSON result line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const driverName = "nats.go"

type args struct {
	workload  string
	url       string
	bucket    string
	n         int
	threads   int
	valueSize int
	watchers  int
	sync      bool
}

var (
	a  args
	js jetstream.JetStream
)

func emit(fields map[string]any) {
	fields["driver"] = driverName
	fields["workload"] = a.workload
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

func unavailable(reason string) { emit(map[string]any{"status": "unavailable", "reason": reason}) }

func fail(err error) {
	emit(map[string]any{"status": "error", "reason": err.Error()})
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func warmupCount(n int) int { return min(max(n/10, 10), 1000) }

func keyOf(space string, i int) string { return fmt.Sprintf("%s.k%08d", space, i) }

func valueOf(size int) []byte { return []byte(strings.Repeat("v", size)) }

// Nearest-rank percentile of sorted nanosecond samples, in microseconds.
func pctUs(sorted []int64, pct float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(pct / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1]) / 1000
}

func report(ops int, elapsed time.Duration, lat []int64, extra map[string]any) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	secs := elapsed.Seconds()
	out := map[string]any{
		"status": "ok", "n": a.n, "threads": a.threads, "watchers": a.watchers,
		"value_size": a.valueSize, "ops": ops, "seconds": secs, "ops_per_s": float64(ops) / secs,
		"p50_us": pctUs(lat, 50), "p99_us": pctUs(lat, 99),
	}
	for k, v := range extra {
		out[k] = v
	}
	emit(out)
}

var stdin = bufio.NewReader(os.Stdin)

// With --sync: announce a phase and wait for the harness's one-line answer on stdin.
func phase(name string) {
	if !a.sync {
		return
	}
	line, _ := json.Marshal(map[string]string{"phase": name})
	fmt.Println(string(line))
	if _, err := stdin.ReadString('\n'); err != nil {
		os.Exit(3)
	}
}

func warmup(ctx context.Context, kv jetstream.KeyValue) {
	val := valueOf(a.valueSize)
	for i := 0; i < warmupCount(a.n); i++ {
		_, err := kv.Put(ctx, keyOf("warm", i%16), val)
		check(err)
	}
}

func runPut(ctx context.Context, kv jetstream.KeyValue) {
	val := valueOf(a.valueSize)
	warmup(ctx, kv)
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		_, err := kv.Put(ctx, keyOf("bench", i), val)
		check(err)
		lat[i] = int64(time.Since(t0))
	}
	report(a.n, time.Since(start), lat, nil)
}

func runGet(ctx context.Context, kv jetstream.KeyValue) {
	val := valueOf(a.valueSize)
	keyspace := min(a.n, 1000)
	for i := 0; i < keyspace; i++ {
		_, err := kv.Put(ctx, keyOf("bench", i), val)
		check(err)
	}
	for i := 0; i < warmupCount(a.n); i++ {
		_, err := kv.Get(ctx, keyOf("bench", i%keyspace))
		check(err)
	}
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		e, err := kv.Get(ctx, keyOf("bench", i%keyspace))
		lat[i] = int64(time.Since(t0))
		check(err)
		if len(e.Value()) != a.valueSize {
			fail(fmt.Errorf("get returned %d bytes", len(e.Value())))
		}
	}
	report(a.n, time.Since(start), lat, nil)
}

func runUpdate(ctx context.Context, kv jetstream.KeyValue) {
	val := valueOf(a.valueSize)
	warmup(ctx, kv)
	rev, err := kv.Put(ctx, "bench.counter", val)
	check(err)
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		rev, err = kv.Update(ctx, "bench.counter", val, rev)
		check(err)
		lat[i] = int64(time.Since(t0))
	}
	report(a.n, time.Since(start), lat, nil)
}

func runPutConcurrent(ctx context.Context, kv jetstream.KeyValue) {
	warmup(ctx, kv)
	lat := make([]int64, a.n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for t := 0; t < a.threads; t++ {
		from, to := a.n*t/a.threads, a.n*(t+1)/a.threads
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			val := valueOf(a.valueSize)
			ready.Done()
			<-gate
			for i := from; i < to; i++ {
				t0 := time.Now()
				_, err := kv.Put(ctx, keyOf("bench", i), val)
				check(err)
				lat[i] = int64(time.Since(t0))
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	done.Wait()
	report(a.n, time.Since(start), lat, nil)
}

type sighting struct {
	rev uint64
	at  time.Time
}

func runWatchLatency(ctx context.Context, kv jetstream.KeyValue) {
	warm := warmupCount(a.n)
	w, err := kv.Watch(ctx, "bench.>")
	check(err)
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
	val := valueOf(a.valueSize)
	lat := make([]int64, 0, a.n)
	start := time.Now()
	for i := 0; i < warm+a.n; i++ {
		if i == warm {
			start = time.Now()
		}
		t0 := time.Now()
		rev, err := kv.Put(ctx, keyOf("bench", i%64), val)
		check(err)
		var at time.Time
		for at.IsZero() {
			select {
			case s, ok := <-seen:
				if !ok {
					fail(fmt.Errorf("watcher stopped before revision %d", rev))
				}
				if s.rev >= rev {
					at = s.at
				}
			case <-time.After(30 * time.Second):
				fail(fmt.Errorf("no event for revision %d", rev))
			}
		}
		if i >= warm {
			lat = append(lat, int64(at.Sub(t0)))
		}
	}
	elapsed := time.Since(start)
	check(w.Stop())
	report(a.n, elapsed, lat, nil)
}

// nats-server 2.15 caps every stream at 1000 consumers unless the stream says otherwise,
// and each kv.Watch is its own consumer: raise the bucket stream's limit so the run
// measures the client instead of stopping at the cap (reported as "raised_max_consumers").
func raiseMaxConsumers(ctx context.Context) int {
	if a.watchers < 1000 {
		return 0
	}
	stream, err := js.Stream(ctx, "KV_"+a.bucket)
	check(err)
	info, err := stream.Info(ctx)
	check(err)
	config := info.Config
	config.MaxConsumers = a.watchers + 16
	_, err = js.UpdateStream(ctx, config)
	check(err)
	return a.watchers + 16
}

func runWatchFanout(ctx context.Context, kv jetstream.KeyValue) {
	warmup(ctx, kv)
	raised := raiseMaxConsumers(ctx)
	phase("baseline")
	watchers := make([]jetstream.KeyWatcher, a.watchers)
	for i := range watchers {
		w, err := kv.Watch(ctx, "bench.>")
		check(err)
		watchers[i] = w
	}
	phase("watchers_ready")
	doneAt := make([]time.Time, a.watchers)
	var done sync.WaitGroup
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
				if got == a.n {
					doneAt[i] = time.Now()
					return
				}
			}
		}()
	}
	val := valueOf(a.valueSize)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		_, err := kv.Put(ctx, keyOf("bench", i%64), val)
		check(err)
	}
	done.Wait()
	last := start
	for i, at := range doneAt {
		if at.IsZero() {
			fail(fmt.Errorf("watcher %d stopped early", i))
		}
		if at.After(last) {
			last = at
		}
	}
	elapsed := last.Sub(start)
	events := a.n * a.watchers
	report(a.n, elapsed, nil, map[string]any{
		"events": events, "events_per_s": float64(events) / elapsed.Seconds(),
		"raised_max_consumers": raised,
	})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: natsgo_driver WORKLOAD --url URL [flags]")
		os.Exit(2)
	}
	a.workload = os.Args[1]
	fs := flag.NewFlagSet("natsgo_driver", flag.ExitOnError)
	fs.StringVar(&a.url, "url", "", "server URL")
	fs.StringVar(&a.bucket, "bucket", "bench", "KV bucket")
	fs.IntVar(&a.n, "n", 1000, "operations (or events per watcher)")
	fs.IntVar(&a.threads, "threads", 1, "goroutines for put_concurrent")
	fs.IntVar(&a.valueSize, "value-size", 128, "value bytes")
	fs.IntVar(&a.watchers, "watchers", 1, "watchers for watch_fanout")
	fs.BoolVar(&a.sync, "sync", false, "phase handshake on stdin/stdout")
	check(fs.Parse(os.Args[2:]))

	runs := map[string]func(context.Context, jetstream.KeyValue){
		"put": runPut, "get": runGet, "update": runUpdate, "put_concurrent": runPutConcurrent,
		"watch_latency": runWatchLatency, "watch_fanout": runWatchFanout,
	}
	run, known := runs[a.workload]
	if !known {
		unavailable("no " + a.workload + " workload for nats.go")
		return
	}
	if !strings.HasPrefix(a.url, "nats://") {
		unavailable("nats.go needs a NATS server, not " + a.url)
		return
	}
	ctx := context.Background()
	nc, err := nats.Connect(a.url)
	check(err)
	defer nc.Close()
	js, err = jetstream.New(nc)
	check(err)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: a.bucket, History: 16, Storage: jetstream.FileStorage, Replicas: 1,
	})
	check(err)
	run(ctx, kv)
	_ = js.DeleteKeyValue(ctx, a.bucket)
}
