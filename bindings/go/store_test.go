// What the Go binding adds to the key-value operations: opening (URL, config forms, bad
// input), byte slices in and out, handles that survive churn. The operations' contract
// itself is the shared scenarios (ops_vectors_test.go).

package coordkv_test

import (
	"bytes"
	"runtime"
	"testing"

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

// A store handle is a (slot, generation) word with bit 63 set, held in a *C.ckv_store;
// reopening reuses a slot with a higher generation each time. Churning through many
// generations, with collections in between, must stay correct and must not crash the GC.
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
