// The finalizer is only a safety net, but it must actually close the library handle of
// a store that was dropped open — and nothing else.

package coordkv

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestFinalizerClosesDroppedStore(t *testing.T) {
	keep, err := Open("mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()

	probe := openAndDrop(t)
	closed := false
	for attempt := 0; attempt < 200 && !closed; attempt++ {
		runtime.GC()
		_, err := probe.LastRevision()
		closed = errors.Is(err, ErrClosed)
		if !closed {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !closed {
		t.Fatal("the dropped store's handle is still open after repeated collections")
	}
	if _, err := keep.Put("/still", []byte("open")); err != nil {
		t.Fatalf("a live store was disturbed: %v", err)
	}
}

// openAndDrop opens a store and drops it; what it returns is a second Store value on
// the same handle, without a finalizer, to probe the library with.
func openAndDrop(t *testing.T) *Store {
	s, err := Open("mem://")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("/x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	return &Store{handle: s.handle}
}
