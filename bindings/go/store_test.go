// The key-value operations, as a user would call them, on every backend.

package coordkv_test

import (
	"bytes"
	"reflect"
	"runtime"
	"testing"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

func TestOpenByURL(t *testing.T) {
	s, err := coordkv.Open("mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rev := mustPut(t, s, "/a", "1")
	wantValue(t, mustGet(t, s, "/a"), "1")
	if rev == 0 {
		t.Fatal("Put returned revision 0")
	}
}

func TestOpenConfigForms(t *testing.T) {
	forms := map[string]any{
		"string":  `{"url": "mem://", "history": 2}`,
		"bytes":   []byte(`{"url": "mem://", "history": 2}`),
		"struct":  coordkv.Config{URL: "mem://", History: 2},
		"pointer": &coordkv.Config{URL: "mem://", History: 2},
	}
	for name, config := range forms {
		t.Run(name, func(t *testing.T) {
			s, err := coordkv.OpenConfig(config)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, v := range []string{"1", "2", "3"} {
				mustPut(t, s, "/k", v)
			}
			// history 2 reached the library: only the last two revisions are kept.
			history, err := s.History("/k")
			if err != nil {
				t.Fatal(err)
			}
			if len(history) != 2 || string(history[0].Value) != "2" || string(history[1].Value) != "3" {
				t.Fatalf("history = %+v, want values 2, 3", history)
			}
		})
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	cases := map[string]func() (*coordkv.Store, error){
		"unknown scheme":       func() (*coordkv.Store, error) { return coordkv.Open("redis://x") },
		"NUL in url":           func() (*coordkv.Store, error) { return coordkv.Open("mem://\x00nats://x") },
		"malformed JSON":       func() (*coordkv.Store, error) { return coordkv.OpenConfig(`{"url": `) },
		"unknown field":        func() (*coordkv.Store, error) { return coordkv.OpenConfig(`{"url": "mem://", "histroy": 3}`) },
		"history out of range": func() (*coordkv.Store, error) { return coordkv.OpenConfig(coordkv.Config{URL: "mem://", History: 65}) },
		"bad bucket name": func() (*coordkv.Store, error) {
			return coordkv.OpenConfig(coordkv.Config{URL: "mem://", Bucket: "a.b"})
		},
		"not a config object": func() (*coordkv.Store, error) { return coordkv.OpenConfig(42) },
		"unencodable config":  func() (*coordkv.Store, error) { return coordkv.OpenConfig(make(chan int)) },
		"NUL in JSON text":    func() (*coordkv.Store, error) { return coordkv.OpenConfig("{\"url\": \"mem://\"}\x00junk") },
		"storage not an option": func() (*coordkv.Store, error) {
			return coordkv.OpenConfig(coordkv.Config{URL: "mem://", Storage: "tape"})
		},
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := open()
			if s != nil {
				s.Close()
				t.Fatal("got a store")
			}
			e := wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
			if len(e.Message) == 0 {
				t.Fatal("empty message")
			}
		})
	}
}

func TestPutGet(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		before := time.Now().Add(-time.Minute)
		rev1 := mustPut(t, s, "/nodes/n-1", "up")
		rev2 := mustPut(t, s, "/nodes/n-1", "down")
		if rev2 <= rev1 {
			t.Fatalf("revisions not increasing: %d then %d", rev1, rev2)
		}
		e := mustGet(t, s, "/nodes/n-1")
		want := coordkv.Entry{Key: "/nodes/n-1", Value: []byte("down"), Revision: rev2, Operation: coordkv.OpPut}
		if e.Key != want.Key || !bytes.Equal(e.Value, want.Value) || e.Revision != want.Revision || e.Operation != want.Operation {
			t.Fatalf("Get = %+v, want %+v", e, want)
		}
		if e.Timestamp.Before(before) || e.Timestamp.After(time.Now().Add(time.Minute)) {
			t.Fatalf("timestamp %v is not around now", e.Timestamp)
		}
		if e.Operation.String() != "PUT" {
			t.Fatalf("operation name %q", e.Operation.String())
		}
	})
}

func TestValuesAreBytes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		values := map[string][]byte{
			"/bin/zero":  {0, 1, 2, 0, 255, 254},
			"/bin/empty": {},
			"/bin/nil":   nil,
			"/bin/big":   bytes.Repeat([]byte{0xAB, 0x00}, 100_000),
		}
		for key, value := range values {
			if _, err := s.Put(key, value); err != nil {
				t.Fatalf("Put(%q): %v", key, err)
			}
		}
		for key, value := range values {
			e := mustGet(t, s, key)
			if !bytes.Equal(e.Value, value) {
				t.Fatalf("%s: got %d bytes, want %d", key, len(e.Value), len(value))
			}
			if e.Value == nil {
				t.Fatalf("%s: an existing value must not read as nil", key)
			}
		}
	})
}

func TestPutDoesNotKeepCallerBuffer(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		buf := []byte("original")
		if _, err := s.Put("/buf", buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXXXXX")
		got := mustGet(t, s, "/buf")
		wantValue(t, got, "original")
		got.Value[0] = 'Z'
		wantValue(t, mustGet(t, s, "/buf"), "original")
	})
}

func TestGetMissing(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		_, err := s.Get("/never/written")
		e := wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
		if e.CurrentRevision != 0 {
			t.Fatalf("CurrentRevision = %d on NOT_FOUND", e.CurrentRevision)
		}
	})
}

func TestCreate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev, err := s.Create("/leader", []byte("n-1"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Create("/leader", []byte("n-2"))
		e := wantStatus(t, err, coordkv.ErrConflict, coordkv.StatusConflict)
		if e.CurrentRevision != rev {
			t.Fatalf("CurrentRevision = %d, want %d", e.CurrentRevision, rev)
		}
		wantValue(t, mustGet(t, s, "/leader"), "n-1")

		// A delete tombstone counts as no value: Create succeeds over it.
		if _, err := s.Delete("/leader", 0); err != nil {
			t.Fatal(err)
		}
		rev2, err := s.Create("/leader", []byte("n-2"))
		if err != nil {
			t.Fatalf("Create over a tombstone: %v", err)
		}
		e2 := mustGet(t, s, "/leader")
		wantValue(t, e2, "n-2")
		if e2.Revision != rev2 {
			t.Fatalf("revision %d, want %d", e2.Revision, rev2)
		}
	})
}

func TestUpdate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev1 := mustPut(t, s, "/cfg", "a")
		rev2, err := s.Update("/cfg", []byte("b"), rev1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Update("/cfg", []byte("c"), rev1)
		e := wantStatus(t, err, coordkv.ErrConflict, coordkv.StatusConflict)
		if e.CurrentRevision != rev2 {
			t.Fatalf("CurrentRevision = %d, want %d", e.CurrentRevision, rev2)
		}
		// The conflict carries what a retry needs: updating at CurrentRevision works.
		if _, err := s.Update("/cfg", []byte("c"), e.CurrentRevision); err != nil {
			t.Fatal(err)
		}
		wantValue(t, mustGet(t, s, "/cfg"), "c")

		_, err = s.Update("/absent", []byte("x"), 7)
		e = wantStatus(t, err, coordkv.ErrConflict, coordkv.StatusConflict)
		if e.CurrentRevision != 0 {
			t.Fatalf("CurrentRevision = %d for a key never written", e.CurrentRevision)
		}
	})
}

func TestDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev := mustPut(t, s, "/d", "v")
		tomb, err := s.Delete("/d", 0)
		if err != nil {
			t.Fatal(err)
		}
		if tomb <= rev {
			t.Fatalf("tombstone revision %d not after %d", tomb, rev)
		}
		_, err = s.Get("/d")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)

		history, err := s.History("/d")
		if err != nil {
			t.Fatal(err)
		}
		last := history[len(history)-1]
		if last.Operation != coordkv.OpDelete || last.Revision != tomb {
			t.Fatalf("last history entry %+v, want DELETE at %d", last, tomb)
		}
	})
}

func TestConditionalDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		rev1 := mustPut(t, s, "/lock", "me")
		rev2 := mustPut(t, s, "/lock", "me again")
		_, err := s.Delete("/lock", rev1)
		e := wantStatus(t, err, coordkv.ErrConflict, coordkv.StatusConflict)
		if e.CurrentRevision != rev2 {
			t.Fatalf("CurrentRevision = %d, want %d", e.CurrentRevision, rev2)
		}
		wantValue(t, mustGet(t, s, "/lock"), "me again")
		if _, err := s.Delete("/lock", rev2); err != nil {
			t.Fatal(err)
		}
		_, err = s.Get("/lock")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
	})
}

func TestPurge(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		mustPut(t, s, "/p", "1")
		mustPut(t, s, "/p", "2")
		mustPut(t, s, "/other", "stays")
		rev, err := s.Purge("/p")
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Get("/p")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
		history, err := s.History("/p")
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != 1 || history[0].Operation != coordkv.OpPurge || history[0].Revision != rev {
			t.Fatalf("history after purge = %+v, want one PURGE marker at %d", history, rev)
		}
		wantValue(t, mustGet(t, s, "/other"), "stays")
	})
}

func TestKeysAndList(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		for _, key := range []string{"/nodes/n-2", "/nodes/n-10", "/nodes/n-1", "/nodesx", "/jobs/a"} {
			mustPut(t, s, key, "v"+key)
		}
		mustPut(t, s, "/nodes/gone", "x")
		if _, err := s.Delete("/nodes/gone", 0); err != nil {
			t.Fatal(err)
		}

		cases := map[string][]string{
			"/nodes/":  {"/nodes/n-1", "/nodes/n-10", "/nodes/n-2"},
			"/nodes":   {"/nodes/n-1", "/nodes/n-10", "/nodes/n-2", "/nodesx"},
			"/nodes/n": {"/nodes/n-1", "/nodes/n-10", "/nodes/n-2"},
			"/":        {"/jobs/a", "/nodes/n-1", "/nodes/n-10", "/nodes/n-2", "/nodesx"},
			"/none/":   {},
		}
		for prefix, want := range cases {
			keys, err := s.Keys(prefix)
			if err != nil {
				t.Fatalf("Keys(%q): %v", prefix, err)
			}
			if !reflect.DeepEqual(keys, want) {
				t.Fatalf("Keys(%q) = %q, want %q", prefix, keys, want)
			}
			entries, err := s.List(prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", prefix, err)
			}
			if len(entries) != len(want) {
				t.Fatalf("List(%q) has %d entries, want %d", prefix, len(entries), len(want))
			}
			for i, e := range entries {
				if e.Key != want[i] || string(e.Value) != "v"+want[i] || e.Operation != coordkv.OpPut || e.Revision == 0 {
					t.Fatalf("List(%q)[%d] = %+v", prefix, i, e)
				}
			}
		}

		for _, bad := range []string{"", "nodes", "nodes/"} {
			_, err := s.Keys(bad)
			wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
			_, err = s.List(bad)
			wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
		}
	})
}

func TestDeletePrefix(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		for _, key := range []string{"/tmp/a", "/tmp/b/c", "/tmpx", "/keep"} {
			mustPut(t, s, key, "v")
		}
		n, err := s.DeletePrefix("/tmp/")
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("deleted %d, want 2", n)
		}
		keys, err := s.Keys("/")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(keys, []string{"/keep", "/tmpx"}) {
			t.Fatalf("left %q", keys)
		}
		n, err = s.DeletePrefix("/tmp")
		if err != nil || n != 1 {
			t.Fatalf("byte-wise DeletePrefix: %d, %v; want 1", n, err)
		}
		n, err = s.DeletePrefix("/tmp/")
		if err != nil || n != 0 {
			t.Fatalf("DeletePrefix of nothing: %d, %v; want 0", n, err)
		}
		_, err = s.DeletePrefix("tmp")
		wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
	})
}

func TestHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		r1 := mustPut(t, s, "/h", "1")
		r2 := mustPut(t, s, "/h", "2")
		r3, err := s.Delete("/h", 0)
		if err != nil {
			t.Fatal(err)
		}
		r4 := mustPut(t, s, "/h", "4")
		history, err := s.History("/h")
		if err != nil {
			t.Fatal(err)
		}
		type step struct {
			rev   uint64
			op    coordkv.Operation
			value string
		}
		want := []step{{r1, coordkv.OpPut, "1"}, {r2, coordkv.OpPut, "2"}, {r3, coordkv.OpDelete, ""}, {r4, coordkv.OpPut, "4"}}
		if len(history) != len(want) {
			t.Fatalf("history has %d entries, want %d: %+v", len(history), len(want), history)
		}
		for i, w := range want {
			h := history[i]
			if h.Key != "/h" || h.Revision != w.rev || h.Operation != w.op || string(h.Value) != w.value {
				t.Fatalf("history[%d] = %+v, want %+v", i, h, w)
			}
		}
		_, err = s.History("/never")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
	})
}

func TestLastRevision(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		start, err := s.LastRevision()
		if err != nil {
			t.Fatal(err)
		}
		if start != 0 {
			t.Fatalf("fresh store at revision %d", start)
		}
		mustPut(t, s, "/a", "1")
		rev := mustPut(t, s, "/b", "2")
		last, err := s.LastRevision()
		if err != nil {
			t.Fatal(err)
		}
		if last != rev {
			t.Fatalf("LastRevision = %d, want %d", last, rev)
		}
	})
}

func TestValueSizeLimit(t *testing.T) {
	eachBackendWith(t, func(t *testing.T, b backend) {
		s := b.open(t, coordkv.Config{MaxValueSize: 16})
		if _, err := s.Put("/fits", make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
		_, err := s.Put("/big", make([]byte, 17))
		wantStatus(t, err, coordkv.ErrLimit, coordkv.StatusLimit)
		_, err = s.Create("/big", make([]byte, 17))
		wantStatus(t, err, coordkv.ErrLimit, coordkv.StatusLimit)
		_, err = s.Get("/big")
		wantStatus(t, err, coordkv.ErrNotFound, coordkv.StatusNotFound)
	})
}

func TestUseAfterClose(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		mustPut(t, s, "/k", "v")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		calls := map[string]func() error{
			"Put":    func() error { _, err := s.Put("/k", nil); return err },
			"Get":    func() error { _, err := s.Get("/k"); return err },
			"Create": func() error { _, err := s.Create("/n", nil); return err },
			"Update": func() error { _, err := s.Update("/k", nil, 1); return err },
			"Delete": func() error { _, err := s.Delete("/k", 0); return err },
			"Purge":  func() error { _, err := s.Purge("/k"); return err },
			"DeletePrefix": func() error {
				_, err := s.DeletePrefix("/")
				return err
			},
			"Keys":         func() error { _, err := s.Keys("/"); return err },
			"List":         func() error { _, err := s.List("/"); return err },
			"History":      func() error { _, err := s.History("/k"); return err },
			"LastRevision": func() error { _, err := s.LastRevision(); return err },
			"ReadModifyWrite": func() error {
				_, err := s.ReadModifyWrite("/k", func([]byte, bool) ([]byte, error) {
					t.Error("callback ran on a closed store")
					return nil, nil
				})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				wantStatus(t, call(), coordkv.ErrClosed, coordkv.StatusClosed)
			})
		}
	})
}

// Store handles are (slot, generation) words; reopening reuses a slot with a higher
// generation each time. Churning well past the generations that look like Go heap
// addresses, with collections in between, must stay correct and must not crash the GC.
func TestManyOpenCloseCycles(t *testing.T) {
	for i := 0; i < 600; i++ {
		s, err := coordkv.Open("mem://")
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			runtime.GC()
		}
		if _, err := s.Put("/cycle", []byte{byte(i)}); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if e := mustGet(t, s, "/cycle"); e.Value[0] != byte(i) {
			t.Fatalf("cycle %d read %v", i, e.Value)
		}
		s.Close()
	}
	runtime.GC()
}

func TestVersion(t *testing.T) {
	v := coordkv.Version()
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		t.Fatalf("Version() = %q", v)
	}
}
