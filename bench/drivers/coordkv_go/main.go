// coordkv through its Go binding (bindings/go, cgo): the same workloads as the nats.go
// peer, written the way a Go user of the binding would — one Store shared by every
// goroutine, blocking calls. The harness links it against the library it built through
// CGO_LDFLAGS (see bench/run.py), so it measures the same libcoordkv as the C driver.
//
// A workload the binding or its backend cannot run yet prints an "unavailable" line.
// Speaks the driver protocol of bench/README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

const driverName = "coordkv-go"

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

var a args

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

func keyOf(space string, i int) string { return fmt.Sprintf("/%s/k%08d", space, i) }

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

func report(ops int, elapsed time.Duration, lat []int64) {
	reportWith(ops, elapsed, lat, nil)
}

func reportWith(ops int, elapsed time.Duration, lat []int64, extra map[string]any) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	secs := elapsed.Seconds()
	fields := map[string]any{
		"status": "ok", "n": a.n, "threads": a.threads, "watchers": a.watchers,
		"value_size": a.valueSize, "ops": ops, "seconds": secs, "ops_per_s": float64(ops) / secs,
		"p50_us": pctUs(lat, 50), "p99_us": pctUs(lat, 99),
	}
	for k, v := range extra {
		fields[k] = v
	}
	emit(fields)
}

// With --sync: announce a phase and wait for the harness's one-line answer on stdin.
func phase(name string) {
	if !a.sync {
		return
	}
	line, _ := json.Marshal(map[string]string{"phase": name})
	fmt.Println(string(line))
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(3)
	}
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
	check(err)
	return w, follow(w, want)
}

func runWatchLatency(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	warm := warmupCount(a.n)
	w, sn := watchBench(s, warm+a.n)
	defer w.Close()
	lat := make([]int64, 0, a.n)
	var start time.Time
	for i := 0; i < warm+a.n; i++ {
		if i == warm {
			start = time.Now()
		}
		t0 := time.Now()
		rev, err := s.Put(keyOf("bench", i%64), val)
		check(err)
		sn.mu.Lock()
		for sn.rev < rev && !sn.failed {
			sn.cond.Wait()
		}
		at, failed := sn.at, sn.failed
		sn.mu.Unlock()
		if failed {
			fail(fmt.Errorf("the watch ended before revision %d", rev))
		}
		if i >= warm {
			lat = append(lat, at.Sub(t0).Nanoseconds())
		}
	}
	report(a.n, time.Since(start), lat)
}

func runWatchFanout(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	warmup(s)
	phase("baseline")
	watchers := make([]*coordkv.Watcher, a.watchers)
	seens := make([]*seen, a.watchers)
	for i := range watchers {
		watchers[i], seens[i] = watchBench(s, a.n)
	}
	phase("watchers_ready")
	start := time.Now()
	for i := 0; i < a.n; i++ {
		_, err := s.Put(keyOf("bench", i%64), val)
		check(err)
	}
	last := start
	for _, sn := range seens {
		sn.mu.Lock()
		for sn.got < sn.want && !sn.failed {
			sn.cond.Wait()
		}
		if sn.failed {
			fail(errors.New("a watcher ended early"))
		}
		if sn.doneAt.After(last) {
			last = sn.doneAt
		}
		sn.mu.Unlock()
	}
	for _, w := range watchers {
		w.Close()
	}
	events := a.n * a.watchers
	elapsed := last.Sub(start)
	reportWith(a.n, elapsed, nil, map[string]any{
		"events": events, "events_per_s": float64(events) / elapsed.Seconds(), "server_consumers": 1,
	})
}

func warmup(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	for i := 0; i < warmupCount(a.n); i++ {
		_, err := s.Put(keyOf("warm", i%16), val)
		check(err)
	}
}

func runPut(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	warmup(s)
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		_, err := s.Put(keyOf("bench", i), val)
		check(err)
		lat[i] = int64(time.Since(t0))
	}
	report(a.n, time.Since(start), lat)
}

func runGet(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	keyspace := min(a.n, 1000)
	for i := 0; i < keyspace; i++ {
		_, err := s.Put(keyOf("bench", i), val)
		check(err)
	}
	for i := 0; i < warmupCount(a.n); i++ {
		_, err := s.Get(keyOf("bench", i%keyspace))
		check(err)
	}
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		e, err := s.Get(keyOf("bench", i%keyspace))
		lat[i] = int64(time.Since(t0))
		check(err)
		if len(e.Value) != a.valueSize {
			fail(fmt.Errorf("get returned %d bytes", len(e.Value)))
		}
	}
	report(a.n, time.Since(start), lat)
}

func runUpdate(s *coordkv.Store) {
	val := valueOf(a.valueSize)
	warmup(s)
	rev, err := s.Put("/bench/counter", val)
	check(err)
	lat := make([]int64, a.n)
	start := time.Now()
	for i := 0; i < a.n; i++ {
		t0 := time.Now()
		rev, err = s.Update("/bench/counter", val, rev)
		check(err)
		lat[i] = int64(time.Since(t0))
	}
	report(a.n, time.Since(start), lat)
}

func runPutConcurrent(s *coordkv.Store) {
	warmup(s)
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
				_, err := s.Put(keyOf("bench", i), val)
				check(err)
				lat[i] = int64(time.Since(t0))
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	done.Wait()
	report(a.n, time.Since(start), lat)
}

func open() (*coordkv.Store, error) {
	if strings.HasPrefix(a.url, "nats://") {
		return coordkv.OpenConfig(coordkv.Config{
			URL: a.url, Bucket: a.bucket, History: 16, Storage: "file",
		})
	}
	return coordkv.Open(a.url)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: coordkv_go_driver WORKLOAD --url URL [flags]")
		os.Exit(2)
	}
	a.workload = os.Args[1]
	fs := flag.NewFlagSet("coordkv_go_driver", flag.ExitOnError)
	fs.StringVar(&a.url, "url", "", "store URL")
	fs.StringVar(&a.bucket, "bucket", "bench", "KV bucket on NATS")
	fs.IntVar(&a.n, "n", 1000, "operations (or events per watcher)")
	fs.IntVar(&a.threads, "threads", 1, "goroutines for put_concurrent")
	fs.IntVar(&a.valueSize, "value-size", 128, "value bytes")
	fs.IntVar(&a.watchers, "watchers", 1, "watchers for watch workloads")
	fs.BoolVar(&a.sync, "sync", false, "phase handshake on stdin/stdout")
	check(fs.Parse(os.Args[2:]))

	if a.workload == "dispatch" {
		unavailable("dispatch is measured through the C driver")
		return
	}
	runs := map[string]func(*coordkv.Store){
		"put": runPut, "get": runGet, "update": runUpdate, "put_concurrent": runPutConcurrent,
		"watch_latency": runWatchLatency, "watch_fanout": runWatchFanout,
	}
	run, known := runs[a.workload]
	if !known {
		unavailable("no " + a.workload + " workload for coordkv-go")
		return
	}
	s, err := open()
	if errors.Is(err, coordkv.ErrUnsupported) {
		unavailable(err.Error())
		return
	}
	check(err)
	defer s.Close()
	run(s)
}
