// ReadModifyWrite: the library's retry loop driving a Go function through the
// trampoline, and what happens when that function fails or panics.

package coordkv_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

func increment(current []byte, exists bool) ([]byte, error) {
	n := 0
	if exists {
		var err error
		if n, err = strconv.Atoi(string(current)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

func TestReadModifyWriteEightGoroutinesExact(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		const goroutines, each = 8, 100
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, err := s.ReadModifyWrite("/shared/counter", increment); err != nil {
						t.Errorf("goroutine %d, increment %d: %v", g, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		wantValue(t, mustGet(t, s, "/shared/counter"), strconv.Itoa(goroutines*each))
		history, err := s.History("/shared/counter")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(history); i++ {
			prev, _ := strconv.Atoi(string(history[i-1].Value))
			cur, _ := strconv.Atoi(string(history[i].Value))
			if cur != prev+1 {
				t.Fatalf("history jumps from %d to %d: a lost update", prev, cur)
			}
		}
	})
}

// A write that lands between the read and the write makes the library call the function
// again with the newer value.
func TestReadModifyWriteRetriesOnConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		mustPut(t, s, "/retry", "10")
		var seen []string
		_, err := s.ReadModifyWrite("/retry", func(current []byte, exists bool) ([]byte, error) {
			seen = append(seen, string(current))
			if len(seen) == 1 {
				// Reentrant call from inside the callback: a competing write.
				if _, err := s.Put("/retry", []byte("20")); err != nil {
					return nil, err
				}
			}
			return increment(current, exists)
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seen) != "[10 20]" {
			t.Fatalf("callback saw %q, want [10 20]", seen)
		}
		wantValue(t, mustGet(t, s, "/retry"), "21")
	})
}

type quotaError struct{ left int }

func (q *quotaError) Error() string { return fmt.Sprintf("quota exhausted (%d left)", q.left) }

func TestReadModifyWriteCallbackError(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev := mustPut(t, s, "/q", "kept")
		sentinel := errors.New("stop here")
		for name, returned := range map[string]error{
			"sentinel": sentinel,
			"typed":    &quotaError{left: 0},
			"wrapped":  fmt.Errorf("while deciding: %w", sentinel),
		} {
			t.Run(name, func(t *testing.T) {
				_, err := s.ReadModifyWrite("/q", func([]byte, bool) ([]byte, error) {
					return []byte("must not be written"), returned
				})
				e := wantStatus(t, err, coordkv.ErrCanceled, coordkv.StatusCanceled)
				if !errors.Is(err, returned) {
					t.Fatalf("errors.Is(err, the callback's error) is false: %v", err)
				}
				if !strings.Contains(err.Error(), returned.Error()) {
					t.Fatalf("Error() = %q hides the callback's error", err.Error())
				}
				if !strings.HasPrefix(e.Message, "CANCELED") {
					t.Fatalf("Message = %q, want the library's CANCELED message", e.Message)
				}
				if name == "typed" {
					var q *quotaError
					if !errors.As(err, &q) {
						t.Fatalf("errors.As cannot reach the callback's *quotaError: %v", err)
					}
				}
				if name != "sentinel" && name != "wrapped" && errors.Is(err, sentinel) {
					t.Fatal("matched an error the callback never returned")
				}
			})
		}
		e := mustGet(t, s, "/q")
		if string(e.Value) != "kept" || e.Revision != rev {
			t.Fatalf("a canceled ReadModifyWrite wrote: %+v", e)
		}
	})
}

func TestReadModifyWritePanicIsReturned(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev := mustPut(t, s, "/p", "kept")
		panicErr := errors.New("panicked with an error")
		cases := map[string]coordkv.ModifyFunc{
			"string": func([]byte, bool) ([]byte, error) { panic("boom") },
			"error":  func([]byte, bool) ([]byte, error) { panic(panicErr) },
			"runtime": func(current []byte, _ bool) ([]byte, error) {
				var m map[string]int
				m["x"] = len(current) // assignment to a nil map
				return nil, nil
			},
			"nil func": nil,
		}
		for name, modify := range cases {
			t.Run(name, func(t *testing.T) {
				_, err := s.ReadModifyWrite("/p", modify)
				wantStatus(t, err, coordkv.ErrCanceled, coordkv.StatusCanceled)
				var p *coordkv.PanicError
				if !errors.As(err, &p) {
					t.Fatalf("want a *PanicError, got %v", err)
				}
				if len(p.Stack) == 0 {
					t.Fatal("no stack recorded")
				}
				switch name {
				case "string":
					if p.Value != "boom" {
						t.Fatalf("panic value %v", p.Value)
					}
				case "error":
					if !errors.Is(err, panicErr) {
						t.Fatalf("errors.Is cannot reach the panic's error: %v", err)
					}
				}
			})
		}
		e := mustGet(t, s, "/p")
		if string(e.Value) != "kept" || e.Revision != rev {
			t.Fatalf("a panicking ReadModifyWrite wrote: %+v", e)
		}
		// The store and the calling goroutine are fine afterwards.
		if _, err := s.ReadModifyWrite("/p", func([]byte, bool) ([]byte, error) { return []byte("after"), nil }); err != nil {
			t.Fatal(err)
		}
		wantValue(t, mustGet(t, s, "/p"), "after")
	})
}

func TestReadModifyWriteCallbackReadsOtherKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		mustPut(t, s, "/source", "from-source")
		_, err := s.ReadModifyWrite("/target", func([]byte, bool) ([]byte, error) {
			e, err := s.Get("/source")
			if err != nil {
				return nil, err
			}
			return append([]byte("copied "), e.Value...), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, mustGet(t, s, "/target"), "copied from-source")
	})
}
