// The error vocabulary: one sentinel per ckv_status, matched by errors.Is, details by
// errors.As, and every message belonging to the call that failed.

package coordkv_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// Every failure status with its sentinel. Their codes and names are the header's
// (TestStatusesAreTheHeaders in vocabulary_test.go).
var allStatuses = []struct {
	status   coordkv.Status
	sentinel error
}{
	{coordkv.StatusNotFound, coordkv.ErrNotFound}, {coordkv.StatusConflict, coordkv.ErrConflict},
	{coordkv.StatusInvalidArgument, coordkv.ErrInvalidArgument}, {coordkv.StatusTimeout, coordkv.ErrTimeout},
	{coordkv.StatusClosed, coordkv.ErrClosed}, {coordkv.StatusUnavailable, coordkv.ErrUnavailable},
	{coordkv.StatusUnauthorized, coordkv.ErrUnauthorized}, {coordkv.StatusLimit, coordkv.ErrLimit},
	{coordkv.StatusUnsupported, coordkv.ErrUnsupported}, {coordkv.StatusCanceled, coordkv.ErrCanceled},
	{coordkv.StatusInternal, coordkv.ErrInternal}, {coordkv.StatusPermissionDenied, coordkv.ErrPermissionDenied},
	{coordkv.StatusLeaseNotFound, coordkv.ErrLeaseNotFound},
}

func TestSentinelsNameTheirStatus(t *testing.T) {
	if coordkv.StatusOK != 0 || coordkv.StatusOK.String() != "OK" {
		t.Fatalf("StatusOK = %d %q", coordkv.StatusOK, coordkv.StatusOK.String())
	}
	for _, s := range allStatuses {
		if !strings.Contains(s.sentinel.Error(), s.status.String()) {
			t.Errorf("sentinel %q does not name %s", s.sentinel.Error(), s.status)
		}
	}
	if got := coordkv.Status(99).String(); got != "UNKNOWN" {
		t.Errorf("unknown status named %q", got)
	}
}

// Each status matches its own sentinel and no other, also through wrapping.
func TestErrorIsMatchesExactlyItsSentinel(t *testing.T) {
	for _, s := range allStatuses {
		err := fmt.Errorf("context: %w", &coordkv.Error{Status: s.status, Message: s.status.String() + ": test"})
		for _, other := range allStatuses {
			if got := errors.Is(err, other.sentinel); got != (other.status == s.status) {
				t.Errorf("errors.Is(%s error, %s sentinel) = %v", s.status, other.status, got)
			}
		}
		var e *coordkv.Error
		if !errors.As(err, &e) || e.Status != s.status {
			t.Errorf("errors.As lost the %s *Error", s.status)
		}
	}
	if errors.Is(&coordkv.Error{Status: 99}, coordkv.ErrInternal) {
		t.Error("an unknown status matched ErrInternal")
	}
}

func TestErrorTextIsTheLibraryMessage(t *testing.T) {
	s, err := coordkv.Open("mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Get("/missing/key")
	e := wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
	if !strings.HasPrefix(e.Message, "NOT_FOUND") || !strings.Contains(e.Message, "/missing/key") {
		t.Fatalf("message %q does not describe this failure", e.Message)
	}
	if err.Error() != "coordkv: "+e.Message {
		t.Fatalf("Error() = %q", err.Error())
	}
}

// Goroutines move between OS threads between two cgo calls; each failure's message must
// still be its own call's, never another goroutine's.
func TestMessagesBelongToTheirCall(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					key := fmt.Sprintf("/absent/g%d/i%d", g, i)
					_, err := s.Get(key)
					var e *coordkv.Error
					if !errors.As(err, &e) || e.Status != coordkv.StatusNotFound {
						t.Errorf("Get(%q) = %v", key, err)
						return
					}
					if !strings.Contains(e.Message, fmt.Sprintf("%q", key)) {
						t.Errorf("Get(%q) failed with someone else's message %q", key, e.Message)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// The statuses a key-value call on an open store can produce, each from a real call.
func TestStatusesFromRealCalls(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := b.open(t, coordkv.Config{MaxValueSize: 8})
		rev := mustPut(t, s, "/k", "v")

		_, err := s.Get("/nope")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)

		_, err = s.Create("/k", []byte("again"))
		if e := wantStatus(t, err, coordkv.ErrConflict, coordkv.StatusConflict); e.CurrentRevision != rev {
			t.Fatalf("CurrentRevision = %d, want %d", e.CurrentRevision, rev)
		}

		_, err = s.Put("no-slash", []byte("v"))
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)

		_, err = s.Put("/k", []byte("123456789"))
		wantStatus(t, err, coordkv.ErrLimit, coordkv.StatusLimit)

		_, err = s.ReadModifyWrite("/k", func([]byte, bool) ([]byte, error) {
			return nil, errors.New("not today")
		})
		wantStatus(t, err, coordkv.ErrCanceled, coordkv.StatusCanceled)

		s.Close()
		_, err = s.Get("/k")
		wantStatus(t, err, coordkv.ErrClosed, coordkv.StatusClosed)
	})
}
