// The shared key vectors (tests/vectors/keys.json), so Go accepts and refuses exactly the
// keys C, Rust and Python do. Keys given as hex are raw bytes — invalid UTF-8, embedded
// NULs — that a Go string carries unchanged to the library.

package coordkv_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

type keyVectors struct {
	Valid []struct {
		Key string `json:"key"`
	} `json:"valid"`
	Invalid []struct {
		Key    *string `json:"key"`
		KeyHex *string `json:"key_hex"`
		Why    string  `json:"why"`
	} `json:"invalid"`
	Prefixes []struct {
		Prefix string `json:"prefix"`
	} `json:"prefixes"`
}

func loadVectors(t *testing.T) keyVectors {
	t.Helper()
	raw, err := os.ReadFile("../../tests/vectors/keys.json")
	if err != nil {
		t.Fatal(err)
	}
	var v keyVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 || len(v.Prefixes) == 0 {
		t.Fatal("keys.json has an empty section")
	}
	return v
}

func TestVectorValidKeys(t *testing.T) {
	vectors := loadVectors(t)
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		var all []string
		for _, v := range vectors.Valid {
			key := v.Key
			all = append(all, key)
			rev, err := s.Create(key, []byte("c:"+key))
			if err != nil {
				t.Fatalf("Create(%q): %v", key, err)
			}
			if _, err := s.Update(key, []byte("u:"+key), rev); err != nil {
				t.Fatalf("Update(%q): %v", key, err)
			}
			if _, err := s.ReadModifyWrite(key, func(current []byte, exists bool) ([]byte, error) {
				return append([]byte("rmw|"), current...), nil
			}); err != nil {
				t.Fatalf("ReadModifyWrite(%q): %v", key, err)
			}
			e := mustGet(t, s, key)
			if e.Key != key {
				t.Fatalf("Get(%q) returned key %q", key, e.Key)
			}
			wantValue(t, e, "rmw|u:"+key)
			history, err := s.History(key)
			if err != nil || len(history) != 3 || history[0].Key != key {
				t.Fatalf("History(%q) = %+v, %v", key, history, err)
			}
		}
		sort.Strings(all)
		keys, err := s.Keys("/")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(keys, all) {
			t.Fatalf("Keys(\"/\") = %q, want %q", keys, all)
		}

		// Every vector prefix selects exactly the keys that start with it.
		for _, p := range vectors.Prefixes {
			var want []string
			for _, key := range all {
				if strings.HasPrefix(key, p.Prefix) {
					want = append(want, key)
				}
			}
			got, err := s.Keys(p.Prefix)
			if err != nil {
				t.Fatalf("Keys(%q): %v", p.Prefix, err)
			}
			if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
				t.Fatalf("Keys(%q) = %q, want %q", p.Prefix, got, want)
			}
		}

		for _, key := range all {
			if _, err := s.Purge(key); err != nil {
				t.Fatalf("Purge(%q): %v", key, err)
			}
		}
		if keys, err := s.Keys("/"); err != nil || len(keys) != 0 {
			t.Fatalf("after purging every key: %q, %v", keys, err)
		}
	})
}

func TestVectorInvalidKeys(t *testing.T) {
	vectors := loadVectors(t)
	eachBackend(t, func(t *testing.T, s *coordkv.Store) {
		for _, v := range vectors.Invalid {
			var key string
			switch {
			case v.Key != nil:
				key = *v.Key
			case v.KeyHex != nil:
				raw, err := hex.DecodeString(*v.KeyHex)
				if err != nil {
					t.Fatalf("bad hex %q: %v", *v.KeyHex, err)
				}
				key = string(raw)
			default:
				t.Fatalf("vector %q has neither key nor key_hex", v.Why)
			}
			calls := map[string]func() error{
				"Put":    func() error { _, err := s.Put(key, []byte("v")); return err },
				"Get":    func() error { _, err := s.Get(key); return err },
				"Create": func() error { _, err := s.Create(key, []byte("v")); return err },
				"Update": func() error { _, err := s.Update(key, []byte("v"), 1); return err },
				"Delete": func() error { _, err := s.Delete(key, 0); return err },
				"Purge":  func() error { _, err := s.Purge(key); return err },
				"History": func() error {
					_, err := s.History(key)
					return err
				},
				"ReadModifyWrite": func() error {
					_, err := s.ReadModifyWrite(key, func([]byte, bool) ([]byte, error) { return []byte("v"), nil })
					return err
				},
			}
			for name, call := range calls {
				err := call()
				if err == nil {
					t.Fatalf("%s(%q) [%s] succeeded", name, key, v.Why)
				}
				wantStatus(t, err, coordkv.ErrInvalidArgument, coordkv.StatusInvalidArgument)
			}
		}
		// Nothing was written under any spelling of those keys.
		if keys, err := s.Keys("/"); err != nil || len(keys) != 0 {
			t.Fatalf("invalid keys left %q, %v", keys, err)
		}
	})
}
