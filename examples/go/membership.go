// membership.go — nodes register under /nodes/<id> with a lease; a watcher prints who
// joins (PUT), who leaves cleanly (DELETE: the node revoked its lease) and who dies
// (EXPIRED: nobody renewed the lease for its TTL).
//
//	cd examples/go && go run . [url]      (default mem://)
//
// On mem:// every node lives in this process, so node 2's death is played by
// Lease.Abandon, which stops the library's keepalive exactly as a crash would. On NATS,
// run a node in another process and kill -9 it: the watcher prints the same line. The
// binding links the repository's target/debug library (cargo build first).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

func main() {
	url := "mem://"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	// A 1 s marker TTL lets NATS grant the 2 s leases as asked (see the README).
	store, err := coordkv.OpenConfig(coordkv.Config{URL: url, Bucket: "membership", MarkerTTLMs: 1000})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, err := store.Watch(ctx, "/nodes/", coordkv.WatchOptions{Prefix: true})
	if err != nil {
		log.Fatal(err)
	}
	started := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		what := map[coordkv.EventKind]string{
			coordkv.EventPut:     "joined",
			coordkv.EventDelete:  "left",
			coordkv.EventExpired: "DIED (its lease expired)",
		}
		for event := range watcher.Events() {
			if text, ok := what[event.Kind]; ok && event.Entry != nil {
				fmt.Printf("[%5.2fs] %s %s (revision %d)\n", time.Since(started).Seconds(),
					event.Entry.Key, text, event.Revision)
			}
		}
	}()

	one, err := store.Grant(ctx, 2*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	two, err := store.Grant(ctx, 2*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	for key, lease := range map[string]*coordkv.Lease{"/nodes/n-1": one, "/nodes/n-2": two} {
		if _, err := store.Put(key, []byte("10.0.0.1:7000"), coordkv.WithLease(lease.ID())); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("two nodes with 2 s leases; the library renews them (quietly)")
	time.Sleep(3 * time.Second)
	fmt.Println("n-1 shuts down cleanly (revokes its lease); n-2 crashes (its keepalive stops)")
	if err := one.Revoke(ctx); err != nil {
		log.Fatal(err)
	}
	if err := two.Abandon(); err != nil {
		log.Fatal(err)
	}
	<-two.Done() // the holder is told at once that its lease is lost
	time.Sleep(3 * time.Second)
	cancel()
	<-done
}
