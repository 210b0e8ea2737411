// Leases, TTL keys and quiet writes through the Go binding, on both backends, as a
// membership watcher sees them: PUT when a node joins, DELETE when it leaves (Revoke),
// EXPIRED when its holder stops (Abandon, what a killed process does to its lease). The
// Rust version is tests/leases.rs. NATS stores use the shortest marker TTL (1 s), so that
// the short TTLs are granted as asked (whole seconds).

package coordkv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

var bg = context.Background()

func leaseStore(t *testing.T, b backend) *coordkv.Store {
	return b.open(t, coordkv.Config{MarkerTTLMs: 1000})
}

// ttlFor is mem on mem://, nats on NATS (which grants whole seconds).
func ttlFor(b backend, mem, nats time.Duration) time.Duration {
	if b.name == "mem" {
		return mem
	}
	return nats
}

// mustGrant grants a lease; a NATS server without TTLs (before 2.11.2) must say so, and
// skips the test.
func mustGrant(t *testing.T, s *coordkv.Store, ttl time.Duration, opts ...coordkv.LeaseOption) *coordkv.Lease {
	t.Helper()
	lease, err := s.Grant(bg, ttl, opts...)
	if errors.Is(err, coordkv.ErrUnsupported) {
		if !strings.Contains(err.Error(), "2.11.2") {
			t.Fatalf("UNSUPPORTED without the version needed: %v", err)
		}
		t.Skipf("the server has no TTLs: %v", err)
	}
	if err != nil {
		t.Fatalf("Grant(%v): %v", ttl, err)
	}
	if lease.ID() == 0 || lease.TTL() < ttl {
		t.Fatalf("lease %d granted %v for %v asked", lease.ID(), lease.TTL(), ttl)
	}
	return lease
}

func nodeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/nodes/n-%03d", i)
	}
	return keys
}

// membershipWatch watches /nodes/ with a buffer large enough for every keepalive.
func membershipWatch(t *testing.T, s *coordkv.Store, quietWrites bool) *coordkv.Watcher {
	return mustWatch(t, s, "/nodes/", coordkv.WatchOptions{Prefix: true, QuietWrites: quietWrites, BufferSize: 100_000})
}

// expectEvents receives one event of kind per key, in order, with increasing revisions.
func expectEvents(t *testing.T, w *coordkv.Watcher, kind coordkv.EventKind, keys []string) []coordkv.Event {
	t.Helper()
	var events []coordkv.Event
	for _, key := range keys {
		e := recv(t, w)
		if e.Kind != kind || e.Entry == nil || e.Entry.Key != key {
			t.Fatalf("event %+v, want %v of %s", e, kind, key)
		}
		if len(events) > 0 && e.Revision <= events[len(events)-1].Revision {
			t.Fatalf("revision %d after %d", e.Revision, events[len(events)-1].Revision)
		}
		events = append(events, e)
	}
	return events
}

// noEvent fails if w delivers a data event within d.
func noEvent(t *testing.T, w *coordkv.Watcher, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-w.Events():
			if !ok {
				t.Fatalf("channel closed (Err: %v)", w.Err())
			}
			if e.Kind != coordkv.EventProgress {
				t.Fatalf("unexpected event %+v (entry %+v)", e, e.Entry)
			}
		case <-timer.C:
			return
		}
	}
}

// isDone reports whether the lease's Done channel is closed now.
func isDone(l *coordkv.Lease) bool {
	select {
	case <-l.Done():
		return true
	default:
		return false
	}
}

// wantLost checks that Done is closed now and Err says why, naming what.
func wantLost(t *testing.T, l *coordkv.Lease, what string) {
	t.Helper()
	if !isDone(l) {
		t.Fatalf("lease %d: Done is still open", l.ID())
	}
	var lost *coordkv.LeaseLostError
	if !errors.As(l.Err(), &lost) || lost.ID != l.ID() || !strings.Contains(lost.Reason, what) {
		t.Fatalf("lease %d: Err() = %v, want a *LeaseLostError saying %q", l.ID(), l.Err(), what)
	}
}

func TestRevokedLeaseDeletesItsKeysAndRefusesLaterWrites(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		lease := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, 1500*time.Millisecond))
		if isDone(lease) || lease.Err() != nil {
			t.Fatalf("a fresh lease is lost: %v", lease.Err())
		}
		keys := nodeKeys(10)
		w := membershipWatch(t, s, false)
		for _, key := range keys {
			if _, err := s.Put(key, []byte("up"), coordkv.WithLease(lease.ID())); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range expectEvents(t, w, coordkv.EventPut, keys) {
			if e.Entry.Lease != lease.ID() || e.Entry.Quiet {
				t.Fatalf("join %+v: want lease %d, not quiet", e.Entry, lease.ID())
			}
		}
		if e := mustGet(t, s, keys[0]); e.Lease != lease.ID() {
			t.Fatalf("Get: lease %d, want %d", e.Lease, lease.ID())
		}
		info, err := lease.TimeToLive(bg, true)
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != lease.ID() || info.TTL != lease.TTL() || info.Remaining > info.TTL || fmt.Sprint(info.Keys) != fmt.Sprint(keys) {
			t.Fatalf("TimeToLive = %+v, want TTL %v and keys %v", info, lease.TTL(), keys)
		}
		if info, err := s.LeaseTimeToLive(bg, lease.ID(), false); err != nil || info.Keys != nil {
			t.Fatalf("LeaseTimeToLive without keys = %+v, %v", info, err)
		}
		if ids, err := s.Leases(bg); err != nil || len(ids) != 1 || ids[0] != lease.ID() {
			t.Fatalf("Leases = %v, %v; want [%d]", ids, err, lease.ID())
		}

		if err := lease.Revoke(bg); err != nil {
			t.Fatal(err)
		}
		wantLost(t, lease, "revoked") // told inside the call
		expectEvents(t, w, coordkv.EventDelete, keys)
		for _, key := range keys {
			_, err := s.Get(key)
			wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
		}
		_, err = s.Put("/nodes/late", []byte("x"), coordkv.WithLease(lease.ID()))
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		wantStatus(t, lease.Revoke(bg), coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		_, err = lease.KeepAlive(bg)
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		_, err = lease.TimeToLive(bg, true)
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		if ids, err := s.Leases(bg); err != nil || len(ids) != 0 {
			t.Fatalf("Leases after revoke = %v, %v", ids, err)
		}
	})
}

func TestAbandonedLeaseExpiresItsKeysWithExpiredEvents(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		lease := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, 2*time.Second))
		keys := nodeKeys(50)
		w := membershipWatch(t, s, false)
		for _, key := range keys {
			if _, err := s.Put(key, []byte("up"), coordkv.WithLease(lease.ID())); err != nil {
				t.Fatal(err)
			}
		}
		expectEvents(t, w, coordkv.EventPut, keys)
		abandoned := time.Now()
		if err := lease.Abandon(); err != nil {
			t.Fatal(err)
		}
		wantLost(t, lease, "abandoned")
		expectEvents(t, w, coordkv.EventExpired, keys)
		t.Logf("%d EXPIRED events, the last %v after Abandon (TTL %v)", len(keys), time.Since(abandoned).Round(time.Millisecond), lease.TTL())
		if got, err := s.Keys("/nodes/"); err != nil || len(got) != 0 {
			t.Fatalf("Keys after expiry = %v, %v", got, err)
		}
		_, err := s.Put("/nodes/late", []byte("x"), coordkv.WithLease(lease.ID()))
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		wantStatus(t, lease.Abandon(), coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
	})
}

func TestKeepaliveKeepsKeysAndOnlyQuietWatchersSeeIt(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		lease := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, 2*time.Second))
		loud := membershipWatch(t, s, false)
		quiet := membershipWatch(t, s, true)
		join, err := s.Put("/nodes/a", []byte("up"), coordkv.WithLease(lease.ID()))
		if err != nil {
			t.Fatal(err)
		}
		// Unrelated writes while the library keeps the lease alive for several TTLs.
		const ttls = 6
		deadline := time.Now().Add(ttls * lease.TTL())
		for time.Now().Before(deadline) {
			mustPut(t, s, "/other/k", "x")
			time.Sleep(10 * time.Millisecond)
		}
		remaining, err := lease.KeepAlive(bg)
		if err != nil || remaining <= 0 || remaining > lease.TTL() {
			t.Fatalf("KeepAlive = %v, %v (TTL %v)", remaining, err, lease.TTL())
		}
		wantValue(t, mustGet(t, s, "/nodes/a"), "up")
		if isDone(lease) {
			t.Fatalf("the lease was lost: %v", lease.Err())
		}

		if e := recv(t, loud); e.Kind != coordkv.EventPut || e.Revision != join {
			t.Fatalf("loud watcher: %+v, want the join at %d", e, join)
		}
		noEvent(t, loud, 200*time.Millisecond)

		through, err := s.LastRevision()
		if err != nil {
			t.Fatal(err)
		}
		if e := recv(t, quiet); e.Revision != join || e.Entry.Quiet {
			t.Fatalf("quiet watcher: %+v, want the join at %d", e, join)
		}
		refreshes := 0
		for {
			e := recv(t, quiet)
			if e.Kind != coordkv.EventPut || !e.Entry.Quiet || e.Entry.Lease != lease.ID() || string(e.Entry.Value) != "up" {
				t.Fatalf("quiet watcher: %+v (entry %+v), want a quiet keepalive PUT", e, e.Entry)
			}
			refreshes++
			if e.Revision >= through {
				break
			}
		}
		if refreshes < ttls {
			t.Fatalf("%d keepalive writes in %d TTLs", refreshes, ttls)
		}
		t.Logf("%d keepalive writes in %d TTLs of %v", refreshes, ttls, lease.TTL())
		if err := lease.Revoke(bg); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTTLKeyExpiresUnlessWrittenAgain(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		mustGrant(t, s, time.Second).Revoke(bg) // skips a server without TTLs
		ttl := ttlFor(b, 300*time.Millisecond, time.Second)
		w := mustWatch(t, s, "/t/a", coordkv.WatchOptions{})
		first, err := s.Put("/t/a", []byte("1"), coordkv.WithTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		// Written again without a TTL before the deadline: the first TTL has no effect.
		mustPut(t, s, "/t/a", "2")
		time.Sleep(2 * ttl)
		wantValue(t, mustGet(t, s, "/t/a"), "2")
		if _, err := s.Put("/t/a", []byte("3"), coordkv.WithTTL(ttl)); err != nil {
			t.Fatal(err)
		}
		for i, kind := range []coordkv.EventKind{coordkv.EventPut, coordkv.EventPut, coordkv.EventPut, coordkv.EventExpired} {
			if e := recv(t, w); e.Kind != kind {
				t.Fatalf("event %d: %+v, want %v", i, e, kind)
			}
		}
		_, err = s.Get("/t/a")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
		history, err := s.History("/t/a")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range history {
			if e.Revision <= first {
				t.Fatalf("the expiry brought back revision %d: %+v", e.Revision, history)
			}
		}

		// Create and Update take the same options.
		created, err := s.Create("/t/c", []byte("c"), coordkv.WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		w = mustWatch(t, s, "/t/c", coordkv.WatchOptions{})
		if _, err := s.Update("/t/c", []byte("d"), created, coordkv.WithTTL(ttl)); err != nil {
			t.Fatal(err)
		}
		if e := recv(t, w); e.Kind != coordkv.EventPut || string(e.Entry.Value) != "d" {
			t.Fatalf("%+v, want the update", e)
		}
		if e := recv(t, w); e.Kind != coordkv.EventExpired {
			t.Fatalf("%+v, want EXPIRED", e)
		}

		_, err = s.Put("/t/b", []byte("x"), coordkv.WithLease(1), coordkv.WithTTL(ttl))
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		_, err = s.Put("/t/b", []byte("x"), coordkv.WithTTL(-time.Second))
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		_, err = s.Create("/t/b", []byte("x"), coordkv.WithLease(12345))
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
	})
}

func TestQuietWritesReachOnlyWatchersThatAsk(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		loud := mustWatch(t, s, "/q/a", coordkv.WatchOptions{})
		quiet := mustWatch(t, s, "/q/a", coordkv.WatchOptions{QuietWrites: true})
		hushed, err := s.Put("/q/a", []byte("hush"), coordkv.Quiet())
		if err != nil {
			t.Fatal(err)
		}
		if e := mustGet(t, s, "/q/a"); !e.Quiet || e.Lease != 0 || e.Revision != hushed {
			t.Fatalf("Get = %+v, want the quiet write", e)
		}
		if e := recv(t, quiet); e.Revision != hushed || !e.Entry.Quiet {
			t.Fatalf("quiet watcher: %+v, want the quiet write at %d", e, hushed)
		}
		created, err := s.Create("/q/b", []byte("x"), coordkv.Quiet())
		if err != nil {
			t.Fatal(err)
		}
		if e := mustGet(t, s, "/q/b"); !e.Quiet || e.Revision != created {
			t.Fatalf("Create with Quiet: Get = %+v", e)
		}
		plain := mustPut(t, s, "/q/a", "loud")
		if e := recv(t, loud); e.Revision != plain || e.Entry.Quiet {
			t.Fatalf("loud watcher: %+v, want only the plain write at %d", e, plain)
		}
		if e := recv(t, quiet); e.Revision != plain {
			t.Fatalf("quiet watcher: %+v, want the plain write at %d", e, plain)
		}
		if e := mustGet(t, s, "/q/a"); e.Quiet {
			t.Fatalf("a plain write read as quiet: %+v", e)
		}
	})
}

func TestClosingTheStoreEndsItsLeases(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		lease := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, time.Second))
		kept := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, time.Second), coordkv.KeepOnClose())
		s.Close()
		wantLost(t, lease, "closed")
		wantLost(t, kept, "closed")
		_, err := s.Grant(bg, time.Second)
		wantStatus(t, err, coordkv.ErrClosed, coordkv.StatusClosed)
		wantStatus(t, lease.Revoke(bg), coordkv.ErrClosed, coordkv.StatusClosed)
	})
}

// Two stores on one NATS bucket: a lease outlives its store only with KeepOnClose, any
// store may revoke any lease, and the holder is told when another store revoked it.
func TestLeasesAcrossStores(t *testing.T) {
	url := strings.TrimSpace(os.Getenv("COORDKV_TEST_NATS_URL"))
	if url == "" {
		t.Skip("needs NATS: mem:// stores share nothing")
	}
	cfg := coordkv.Config{URL: url, Bucket: uniqueBucket(t), MarkerTTLMs: 1000}
	a, other := mustOpenConfig(t, cfg), mustOpenConfig(t, cfg)
	closing := mustOpenConfig(t, cfg)

	dropped := mustGrant(t, closing, 2*time.Second)
	kept := mustGrant(t, closing, 2*time.Second, coordkv.KeepOnClose())
	for key, lease := range map[string]*coordkv.Lease{"/dropped": dropped, "/kept": kept} {
		if _, err := closing.Put(key, []byte("v"), coordkv.WithLease(lease.ID())); err != nil {
			t.Fatal(err)
		}
	}
	closing.Close()
	_, err := other.Get("/dropped")
	wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
	wantValue(t, mustGet(t, other, "/kept"), "v")
	if ids, err := other.Leases(bg); err != nil || len(ids) != 1 || ids[0] != kept.ID() {
		t.Fatalf("Leases = %v, %v; want only the kept lease %d", ids, err, kept.ID())
	}
	if err := other.RevokeLease(bg, kept.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = other.Get("/kept")
	wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)

	held := mustGrant(t, a, 2*time.Second)
	if err := other.RevokeLease(bg, held.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done(): // found by a's keepalive, at about a third of the TTL
	case <-time.After(2 * held.TTL()):
		t.Fatal("the holder was not told that another store revoked its lease")
	}
	wantLost(t, held, "")
}

func TestLeaseCallsRefuseBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		_, err := s.Grant(bg, 0)
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		_, err = s.Grant(bg, -time.Second)
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		_, err = s.Grant(nil, time.Second)
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		canceled, cancel := context.WithCancel(bg)
		cancel()
		if _, err := s.Grant(canceled, time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("Grant with a canceled context: %v", err)
		}
		if err := s.RevokeLease(canceled, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("RevokeLease with a canceled context: %v", err)
		}
		if ids, err := s.Leases(bg); err != nil || ids == nil || len(ids) != 0 {
			t.Fatalf("Leases of a store without any = %#v, %v", ids, err)
		}
		wantStatus(t, s.RevokeLease(bg, 12345), coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		wantStatus(t, s.AbandonLease(12345), coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		_, err = s.KeepAliveLease(bg, 12345)
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
		_, err = s.LeaseTimeToLive(bg, 12345, true)
		wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)
	})
}

// Many goroutines revoke the same lease while others read Done and Err: each revoke
// succeeds or is told the lease ended, and Done closes once (run under -race). How many
// succeed is the core's business: on NATS revokes racing past the record check may all
// succeed.
func TestConcurrentRevokesEndALeaseOnce(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := leaseStore(t, b)
		lease := mustGrant(t, s, ttlFor(b, 300*time.Millisecond, time.Second))
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				results <- lease.Revoke(bg)
			}()
			go func() {
				defer wg.Done()
				<-lease.Done()
				if lease.Err() == nil {
					t.Error("Err is nil after Done closed")
				}
			}()
		}
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, coordkv.ErrLeaseNotFound):
				t.Errorf("a losing Revoke: %v", err)
			}
		}
		if won == 0 {
			t.Fatal("no revoke succeeded")
		}
		wantLost(t, lease, "revoked")
	})
}

// Leases granted and ended in a loop: each lost callback runs once and frees its
// user data, and a dropped Lease value leaves the lease to its store. Abandoned leases
// stay live (and listed) until their TTL runs out.
func TestManyLeasesComeAndGo(t *testing.T) {
	s, err := coordkv.Open("mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 200; i++ {
		lease := mustGrant(t, s, time.Minute)
		if i%2 == 0 {
			err = lease.Revoke(bg)
		} else {
			err = lease.Abandon()
		}
		if err != nil {
			t.Fatal(err)
		}
		<-lease.Done()
	}
	for i := 0; i < 20; i++ {
		mustGrant(t, s, time.Minute) // dropped at once, still kept alive by the store
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	if ids, err := s.Leases(bg); err != nil || len(ids) != 100+20 {
		t.Fatalf("Leases = %d ids, %v; want the 100 abandoned and the 20 dropped ones", len(ids), err)
	}
}
