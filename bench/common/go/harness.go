// Package harness is the Go side of the driver protocol (bench/README.md), shared by the
// nats.go peer and the coordkv Go driver: the flags, the JSON result line, the --sync
// handshake and the workload loops. A driver supplies its client as a Client and its
// watch delivery as functions; the loops call the Client through the interface, so both
// drivers pay the same method calls per timed operation.
package harness

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Args are the driver's flags.
type Args struct {
	Workload  string
	URL       string
	Bucket    string
	N         int
	Threads   int
	ValueSize int
	Watchers  int
	Sync      bool
}

// A holds the flags once Parse has run.
var A Args

var driver string

// Parse reads the command line into A; name is the driver's name in its result line.
func Parse(name string) {
	driver = name
	prog := filepath.Base(os.Args[0])
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s WORKLOAD --url URL [flags]\n", prog)
		os.Exit(2)
	}
	A.Workload = os.Args[1]
	fs := flag.NewFlagSet(prog, flag.ExitOnError)
	fs.StringVar(&A.URL, "url", "", "store or server URL")
	fs.StringVar(&A.Bucket, "bucket", "bench", "KV bucket on NATS")
	fs.IntVar(&A.N, "n", 1000, "operations (or events per watcher)")
	fs.IntVar(&A.Threads, "threads", 1, "goroutines for put_concurrent")
	fs.IntVar(&A.ValueSize, "value-size", 128, "value bytes")
	fs.IntVar(&A.Watchers, "watchers", 1, "watchers for watch_fanout")
	fs.BoolVar(&A.Sync, "sync", false, "phase handshake on stdin/stdout")
	Check(fs.Parse(os.Args[2:]))
}

// Emit prints one result line with the driver and workload added.
func Emit(fields map[string]any) {
	fields["driver"] = driver
	fields["workload"] = A.Workload
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

// Unavailable reports a workload this driver or its backend cannot run.
func Unavailable(reason string) { Emit(map[string]any{"status": "unavailable", "reason": reason}) }

// Fail reports a failure during the run and exits.
func Fail(err error) {
	Emit(map[string]any{"status": "error", "reason": err.Error()})
	os.Exit(1)
}

// Check fails the run on a non-nil error.
func Check(err error) {
	if err != nil {
		Fail(err)
	}
}

// WarmupCount is how many operations precede a timed loop of n.
func WarmupCount(n int) int { return min(max(n/10, 10), 1000) }

// Value is a value of A.ValueSize bytes.
func Value() []byte { return []byte(strings.Repeat("v", A.ValueSize)) }

// PctUs is the nearest-rank percentile of sorted nanosecond samples, in microseconds.
func PctUs(sorted []int64, pct float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(pct / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1]) / 1000
}

// Report prints the "ok" result line: ops over elapsed, percentiles of the nanosecond
// latencies lat (sorted in place), and the extra fields.
func Report(ops int, elapsed time.Duration, lat []int64, extra map[string]any) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	secs := elapsed.Seconds()
	fields := map[string]any{
		"status": "ok", "n": A.N, "threads": A.Threads, "watchers": A.Watchers,
		"value_size": A.ValueSize, "ops": ops, "seconds": secs, "ops_per_s": float64(ops) / secs,
		"p50_us": PctUs(lat, 50), "p99_us": PctUs(lat, 99),
	}
	for k, v := range extra {
		fields[k] = v
	}
	Emit(fields)
}

var stdin = bufio.NewReader(os.Stdin)

// Phase, with --sync, announces a phase and waits for the harness's one-line answer on
// stdin (it samples this process's RSS and the server's consumers meanwhile).
func Phase(name string) {
	if !A.Sync {
		return
	}
	line, _ := json.Marshal(map[string]string{"phase": name})
	fmt.Println(string(line))
	if _, err := stdin.ReadString('\n'); err != nil {
		os.Exit(3)
	}
}

// Client is what the shared loops need of a KV client. Key gives the key of index i in
// space ("bench", "warm") in the client's syntax.
type Client interface {
	Key(space string, i int) string
	Put(key string, val []byte) (rev uint64, err error)
	Get(key string) (val []byte, err error)
	Update(key string, val []byte, rev uint64) (uint64, error)
}

// Workloads are the protocol's workloads a Go driver runs (dispatch is the C driver's).
var Workloads = []string{"put", "get", "update", "put_concurrent", "watch_latency", "watch_fanout"}

// Known tells whether A.Workload is one of Workloads.
func Known() bool {
	for _, w := range Workloads {
		if w == A.Workload {
			return true
		}
	}
	return false
}

// Driver is a connected client with its two watch workloads, which depend on how its
// watches deliver (the loops themselves are TimeWatch and Fanout).
type Driver interface {
	Client
	WatchLatency()
	WatchFanout()
}

// Run runs A.Workload on d; counterKey is the one key update rewrites.
func Run(d Driver, counterKey string) {
	switch A.Workload {
	case "put":
		RunPut(d)
	case "get":
		RunGet(d)
	case "update":
		RunUpdate(d, counterKey)
	case "put_concurrent":
		RunPutConcurrent(d)
	case "watch_latency":
		d.WatchLatency()
	case "watch_fanout":
		d.WatchFanout()
	}
}

// Warmup puts WarmupCount(A.N) times, cycling over 16 keys of its own.
func Warmup(c Client, val []byte) {
	for i := 0; i < WarmupCount(A.N); i++ {
		_, err := c.Put(c.Key("warm", i%16), val)
		Check(err)
	}
}

// RunPut times A.N puts of distinct keys.
func RunPut(c Client) {
	val := Value()
	Warmup(c, val)
	lat := make([]int64, A.N)
	start := time.Now()
	for i := 0; i < A.N; i++ {
		t0 := time.Now()
		_, err := c.Put(c.Key("bench", i), val)
		Check(err)
		lat[i] = int64(time.Since(t0))
	}
	Report(A.N, time.Since(start), lat, nil)
}

// RunGet times A.N gets cycling over min(A.N, 1000) keys written beforehand, each
// checked for the value's length.
func RunGet(c Client) {
	val := Value()
	keyspace := min(A.N, 1000)
	for i := 0; i < keyspace; i++ {
		_, err := c.Put(c.Key("bench", i), val)
		Check(err)
	}
	for i := 0; i < WarmupCount(A.N); i++ {
		_, err := c.Get(c.Key("bench", i%keyspace))
		Check(err)
	}
	lat := make([]int64, A.N)
	start := time.Now()
	for i := 0; i < A.N; i++ {
		t0 := time.Now()
		got, err := c.Get(c.Key("bench", i%keyspace))
		lat[i] = int64(time.Since(t0))
		Check(err)
		if len(got) != A.ValueSize {
			Fail(fmt.Errorf("get returned %d bytes", len(got)))
		}
	}
	Report(A.N, time.Since(start), lat, nil)
}

// RunUpdate times A.N compare-and-swap writes of key, each at the revision the previous
// one returned.
func RunUpdate(c Client, key string) {
	val := Value()
	Warmup(c, val)
	rev, err := c.Put(key, val)
	Check(err)
	lat := make([]int64, A.N)
	start := time.Now()
	for i := 0; i < A.N; i++ {
		t0 := time.Now()
		rev, err = c.Update(key, val, rev)
		Check(err)
		lat[i] = int64(time.Since(t0))
	}
	Report(A.N, time.Since(start), lat, nil)
}

// RunPutConcurrent times A.N puts split evenly over A.Threads goroutines released
// together; ops/s is over the wall time.
func RunPutConcurrent(c Client) {
	Warmup(c, Value())
	lat := make([]int64, A.N)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for t := 0; t < A.Threads; t++ {
		from, to := A.N*t/A.Threads, A.N*(t+1)/A.Threads
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			val := Value()
			ready.Done()
			<-gate
			for i := from; i < to; i++ {
				t0 := time.Now()
				_, err := c.Put(c.Key("bench", i), val)
				Check(err)
				lat[i] = int64(time.Since(t0))
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	done.Wait()
	Report(A.N, time.Since(start), lat, nil)
}

// TimeWatch is watch_latency's loop: WarmupCount(A.N) + A.N puts on 64 keys, each
// followed by seenAt(rev), which blocks until the driver's watcher has the revision and
// says when it came. For the A.N after the warm-up it returns the latencies, from just
// before the put to the watcher's receipt, and the time they took.
func TimeWatch(c Client, seenAt func(rev uint64) time.Time) (lat []int64, elapsed time.Duration) {
	warm := WarmupCount(A.N)
	val := Value()
	lat = make([]int64, 0, A.N)
	start := time.Now()
	for i := 0; i < warm+A.N; i++ {
		if i == warm {
			start = time.Now()
		}
		t0 := time.Now()
		rev, err := c.Put(c.Key("bench", i%64), val)
		Check(err)
		at := seenAt(rev)
		if i >= warm {
			lat = append(lat, int64(at.Sub(t0)))
		}
	}
	return lat, time.Since(start)
}

// Fanout is watch_fanout's run: after the warm-up, watch(i) registers watcher i of
// A.Watchers between the two --sync phases; follow (may be nil) starts reading them once
// they are all registered; then the clock starts, A.N puts go out on 64 keys, and
// lastEvent(start) says when the last watcher had its A.N-th event.
func Fanout(c Client, watch func(i int), follow func(), lastEvent func(start time.Time) time.Time,
	extra map[string]any) {
	val := Value()
	Warmup(c, val)
	Phase("baseline")
	for i := 0; i < A.Watchers; i++ {
		watch(i)
	}
	Phase("watchers_ready")
	if follow != nil {
		follow()
	}
	start := time.Now()
	for i := 0; i < A.N; i++ {
		_, err := c.Put(c.Key("bench", i%64), val)
		Check(err)
	}
	elapsed := lastEvent(start).Sub(start)
	events := A.N * A.Watchers
	fields := map[string]any{"events": events, "events_per_s": float64(events) / elapsed.Seconds()}
	for k, v := range extra {
		fields[k] = v
	}
	Report(A.N, elapsed, nil, fields)
}
