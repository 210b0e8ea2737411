// Test scaffolding: every store test runs once per backend — mem:// always, and NATS
// when COORDKV_TEST_NATS_URL is set, each NATS test in a bucket of its own so tests
// never see each other's keys.

package coordkv_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// backend opens stores for one backend; cfg carries per-test options (URL and Bucket
// are filled in by the backend).
type backend struct {
	name string
	open func(t *testing.T, cfg coordkv.Config) *coordkv.Store
}

var bucketSerial atomic.Uint64

var notBucketChar = regexp.MustCompile(`[^A-Za-z0-9_-]`)

func uniqueBucket(t *testing.T) string {
	name := notBucketChar.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("go_%d_%d_%s", os.Getpid(), bucketSerial.Add(1), name)
}

func backends() []backend {
	list := []backend{{
		name: "mem",
		open: func(t *testing.T, cfg coordkv.Config) *coordkv.Store {
			cfg.URL = "mem://"
			return mustOpenConfig(t, cfg)
		},
	}}
	url := strings.TrimSpace(os.Getenv("COORDKV_TEST_NATS_URL"))
	if url == "" && os.Getenv("COORDKV_REQUIRE_NATS") == "1" {
		// The test command promised a server: running on mem:// alone would pass silently.
		panic("COORDKV_REQUIRE_NATS=1 but COORDKV_TEST_NATS_URL is not set")
	}
	if url != "" {
		list = append(list, backend{
			name: "nats",
			open: func(t *testing.T, cfg coordkv.Config) *coordkv.Store {
				cfg.URL = url
				cfg.Bucket = uniqueBucket(t)
				return mustOpenConfig(t, cfg)
			},
		})
	}
	return list
}

func mustOpenConfig(t *testing.T, cfg coordkv.Config) *coordkv.Store {
	t.Helper()
	s, err := coordkv.OpenConfig(cfg)
	if err != nil {
		text, _ := json.Marshal(cfg)
		t.Fatalf("OpenConfig(%s): %v", text, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachBackend runs test as a subtest per backend, with a fresh default store.
func eachBackend(t *testing.T, test func(t *testing.T, s *coordkv.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			test(t, b.open(t, coordkv.Config{}))
		})
	}
}

// eachBackendWith runs test per backend and lets it open stores with its own options.
func eachBackendWith(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

func mustPut(t *testing.T, s *coordkv.Store, key, value string) uint64 {
	t.Helper()
	rev, err := s.Put(key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func mustGet(t *testing.T, s *coordkv.Store, key string) coordkv.Entry {
	t.Helper()
	e, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

// wantStatus checks that err is an *Error of the given status matching its sentinel.
func wantStatus(t *testing.T, err error, sentinel error, status coordkv.Status) *coordkv.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want %v, got no error", status)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("want errors.Is(err, %v); err = %v", sentinel, err)
	}
	var e *coordkv.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *Error, got %T: %v", err, err)
	}
	if e.Status != status {
		t.Fatalf("status = %v, want %v", e.Status, status)
	}
	return e
}

func wantValue(t *testing.T, e coordkv.Entry, value string) {
	t.Helper()
	if !bytes.Equal(e.Value, []byte(value)) {
		t.Fatalf("%s: value = %q, want %q", e.Key, e.Value, value)
	}
}
