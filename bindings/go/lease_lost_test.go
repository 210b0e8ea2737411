// The lease-lost notification through the Go binding when the NATS server is gone for
// longer than the TTL, and the lease's keys gone once it is back (issue 11; the Rust
// version is tests/nats_leases.rs,
// a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after).
//
// The test kills its server, so it starts a private one: the executable of
// NATS_SERVER_BIN (tests/support/natsd.py exports it), on a free loopback port with a
// store dir of its own, killed with SIGKILL and started again on the same port and dir.
// Without NATS_SERVER_BIN it is skipped, unless COORDKV_REQUIRE_NATS=1, which fails it.
// Delays are logged, never asserted.

package coordkv_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// privateServer is a nats-server this test owns.
type privateServer struct {
	binary   string
	port     int
	storeDir string
	cmd      *exec.Cmd
	exited   chan error // cmd.Wait's result, once the process has ended
}

func (p *privateServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.port) }

// startPrivateServer starts NATS_SERVER_BIN with JetStream on a free loopback port; the
// test's cleanup kills it and removes its store dir.
func startPrivateServer(t *testing.T) *privateServer {
	t.Helper()
	binary := strings.TrimSpace(os.Getenv("NATS_SERVER_BIN"))
	if binary == "" {
		if os.Getenv("COORDKV_REQUIRE_NATS") == "1" {
			t.Fatal("COORDKV_REQUIRE_NATS=1 but NATS_SERVER_BIN is not set (tests/support/natsd.py sets it)")
		}
		t.Skip("NATS_SERVER_BIN is not set (tests/support/natsd.py run exports it)")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	listener.Close()
	server := &privateServer{binary: binary, port: port, storeDir: t.TempDir()}
	// Registered after TempDir, so it runs before the dir is removed.
	t.Cleanup(server.kill)
	server.spawn(t)
	return server
}

// spawn starts the server on its port and store dir and waits until it answers.
func (p *privateServer) spawn(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.binary, "-js", "-p", fmt.Sprint(p.port), "-sd", p.storeDir, "-a", "127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.cmd, p.exited = cmd, exited
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			p.cmd = nil
			t.Fatalf("%s exited early: %v", p.binary, err)
		default:
		}
		if p.answers() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on port %d in time", p.binary, p.port)
}

// answers reports whether the server greets a client with its INFO line.
func (p *privateServer) answers() bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return false
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(conn, buf)
	return err == nil && string(buf) == "INFO"
}

// kill is SIGKILL: no shutdown, no flush — a crash. A no-op when it is not running.
func (p *privateServer) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// waitNotFound polls key until Get says ErrNotFound; any other error (the client still
// reconnecting) is retried.
func waitNotFound(t *testing.T, s *coordkv.Store, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := s.Get(key)
		if errors.Is(err, coordkv.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("the key is still there")
			}
			t.Fatalf("%s not gone within %v: %v", key, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLeaseIsLostWhileTheServerIsDownAndItsKeysAreGoneAfter(t *testing.T) {
	const wait = 30 * time.Second
	server := startPrivateServer(t)
	s := mustOpenConfig(t, coordkv.Config{
		URL:              server.url(),
		Bucket:           uniqueBucket(t),
		RequestTimeoutMs: 500,
		MarkerTTLMs:      1000,
	})
	lease := mustGrant(t, s, 2*time.Second)
	keys := []string{"/l/0", "/l/1", "/l/2"}
	for _, key := range keys {
		if _, err := s.Put(key, []byte("up"), coordkv.WithLease(lease.ID())); err != nil {
			t.Fatalf("Put(%s) with lease %d: %v", key, lease.ID(), err)
		}
	}
	select {
	case <-lease.Done():
		t.Fatalf("lost with the server up: %v", lease.Err())
	case <-time.After(500 * time.Millisecond):
	}
	if lease.Err() != nil {
		t.Fatalf("Err() = %v with Done open", lease.Err())
	}

	killed := time.Now()
	server.kill()
	select {
	case <-lease.Done():
	case <-time.After(wait):
		t.Fatalf("never told the lease was lost (%v after the kill)", wait)
	}
	lostAfter := time.Since(killed)
	// Done is closed by the lost callback itself, after it set Err: the callback ran.
	wantLost(t, lease, "could not be renewed")
	reason := lease.Err()
	t.Logf("lease lost %d ms after the server went down (TTL %v): %v",
		lostAfter.Milliseconds(), lease.TTL(), reason)

	restarted := time.Now()
	server.spawn(t)
	t.Logf("server back %d ms after the kill", time.Since(killed).Milliseconds())
	// The server expires what outlived its TTL during the outage (on recovery).
	for _, key := range keys {
		waitNotFound(t, s, key, wait)
	}
	t.Logf("keys gone %d ms after the restart", time.Since(restarted).Milliseconds())
	_, err := s.Put("/l/late", []byte("x"), coordkv.WithLease(lease.ID()))
	wantStatus(t, err, coordkv.ErrLeaseNotFound, coordkv.StatusLeaseNotFound)

	// The callback is called once: closing the store does not call it again (a second
	// call would close Done twice) nor change what Err says.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if lease.Err() != reason {
		t.Fatalf("Err() changed across Close: %v, was %v", lease.Err(), reason)
	}
}
