// Store: one open ckv_store and the key-value calls on it, each a direct translation of
// its C function.
//
// Shape of every call (storeCall): pass keys and values as (pointer, length) straight
// from Go memory (cgo pins them for the call, the library copies what it keeps), receive
// the output and the ckv_error through this call's own out-parameters, copy the output
// into a Go value, free what the library allocated, and keep the Store reachable until
// the call returns so the finalizer cannot close it under the call. The only C value kept
// across calls is the store handle, in a field of the header's own type (see Store).
//
// Closing is the library's business: a closed handle fails every call with CKV_CLOSED,
// also for calls racing with Close, so the Go side only makes Close idempotent and leaves
// the finalizer as a safety net for stores nobody closed.

package coordkv

// #include <stdlib.h>
// #include "coordkv.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Store is an open store; safe for use by many goroutines at once.
type Store struct {
	// handle is the library's ckv_store handle, passed to C as it is. It is not an
	// address: every handle has bit 63 set (src/ffi/handles.rs), so it lies in the kernel
	// half of the address space, never aliases user memory or Go's heap, and is never
	// below 4096. Go's garbage collector and stack copier ignore such a value in a
	// pointer-typed variable, so no integer shim is needed.
	handle *C.ckv_store
	closed atomic.Bool
}

// Open opens a store by URL: "mem://" (in-process) or "nats://host:port[,host:port...]".
func Open(url string) (*Store, error) {
	return openStore("url", url, func(text *C.char, store **C.ckv_store, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_open(text, store, cerr)
	})
}

// OpenConfig opens a store from a JSON config. config is either the JSON text itself
// (a string, []byte or json.RawMessage) or a value marshalled with encoding/json —
// normally a Config or *Config. The library validates it; unknown fields and wrong
// types fail with ErrInvalidArgument.
func OpenConfig(config any) (*Store, error) {
	var text string
	switch c := config.(type) {
	case string:
		text = c
	case []byte:
		text = string(c)
	case json.RawMessage:
		text = string(c)
	default:
		encoded, err := json.Marshal(config)
		if err != nil {
			return nil, newError(StatusInvalidArgument, "config cannot be encoded as JSON: "+err.Error())
		}
		text = string(encoded)
	}
	return openStore("json config", text, func(text *C.char, store **C.ckv_store, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_open_config(text, store, cerr)
	})
}

// openStore hands text to open as a NUL-terminated string (what names it in the error
// when it holds a NUL) and wraps the store opened.
func openStore(what, text string, open func(text *C.char, store **C.ckv_store, cerr **C.ckv_error) C.ckv_status) (*Store, error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, argumentError(what)
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	return callC(newStore, func(store **C.ckv_store, cerr **C.ckv_error) C.ckv_status {
		return open(ctext, store, cerr)
	})
}

func newStore(handle *C.ckv_store) *Store {
	s := &Store{handle: handle}
	runtime.SetFinalizer(s, (*Store).Close)
	return s
}

// storeCall runs one C call on the store's handle (see callC) and keeps the store
// reachable until it returns, so the finalizer cannot close the store under the call.
func storeCall[O, R any](s *Store, convert func(O) R, call func(store *C.ckv_store, out *O, cerr **C.ckv_error) C.ckv_status) (R, error) {
	defer runtime.KeepAlive(s)
	return callC(convert, func(out *O, cerr **C.ckv_error) C.ckv_status {
		return call(s.handle, out, cerr)
	})
}

// storeDo is storeCall for a C call without an output.
func storeDo(s *Store, call func(store *C.ckv_store, cerr **C.ckv_error) C.ckv_status) error {
	_, err := storeCall(s, asIs[struct{}], func(store *C.ckv_store, _ *struct{}, cerr **C.ckv_error) C.ckv_status {
		return call(store, cerr)
	})
	return err
}

// Close closes the store; every later call fails with ErrClosed. The leases it granted
// are revoked (unless granted with KeepOnClose), and every lease it kept alive is lost
// (its Done closes). Calling it again does nothing. It always returns nil (the library's
// close cannot fail); the result is there so a Store is an io.Closer.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		runtime.SetFinalizer(s, nil)
		C.ckv_close(s.handle)
	}
	return nil
}

// Put writes value under key unconditionally and returns the new revision. Options
// attach the key to a lease, give it a TTL or make the write quiet (see WriteOption).
func (s *Store) Put(key string, value []byte, opts ...WriteOption) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	if len(opts) == 0 {
		return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
			return C.ckv_put(store, k, kn, v, vn, revision, cerr)
		})
	}
	options, err := cWriteOptions(opts)
	if err != nil {
		return 0, err
	}
	return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_put_with(store, k, kn, v, vn, &options, revision, cerr)
	})
}

// Get returns the latest live entry of key; ErrNotFound if it was never written, or was
// deleted, purged or expired.
func (s *Store) Get(key string) (Entry, error) {
	k, kn := cText(key)
	return storeCall(s, takeEntry, func(store *C.ckv_store, entry **C.ckv_entry, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_get(store, k, kn, entry, cerr)
	})
}

// Create writes only if key has no live value (a delete tombstone counts as none);
// otherwise ErrConflict, with the key's revision in (*Error).CurrentRevision. Options as
// for Put.
func (s *Store) Create(key string, value []byte, opts ...WriteOption) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	if len(opts) == 0 {
		return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
			return C.ckv_create(store, k, kn, v, vn, revision, cerr)
		})
	}
	options, err := cWriteOptions(opts)
	if err != nil {
		return 0, err
	}
	return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_create_with(store, k, kn, v, vn, &options, revision, cerr)
	})
}

// Update writes only if key's latest revision is revision; otherwise ErrConflict, with
// the key's revision in (*Error).CurrentRevision. Options as for Put.
func (s *Store) Update(key string, value []byte, revision uint64, opts ...WriteOption) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	if len(opts) == 0 {
		return storeCall(s, goUint64, func(store *C.ckv_store, written *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
			return C.ckv_update(store, k, kn, v, vn, C.uint64_t(revision), written, cerr)
		})
	}
	options, err := cWriteOptions(opts)
	if err != nil {
		return 0, err
	}
	return storeCall(s, goUint64, func(store *C.ckv_store, written *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_update_with(store, k, kn, v, vn, C.uint64_t(revision), &options, written, cerr)
	})
}

// Delete writes a delete tombstone for key and returns its revision. A revision of 0
// deletes unconditionally; any other makes it conditional like Update.
func (s *Store) Delete(key string, revision uint64) (uint64, error) {
	k, kn := cText(key)
	return storeCall(s, goUint64, func(store *C.ckv_store, written *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_delete(store, k, kn, C.uint64_t(revision), written, cerr)
	})
}

// Purge drops key's history, leaving a purge marker whose revision it returns.
func (s *Store) Purge(key string) (uint64, error) {
	k, kn := cText(key)
	return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_purge(store, k, kn, revision, cerr)
	})
}

// DeletePrefix deletes every live key under prefix and returns how many it deleted.
func (s *Store) DeletePrefix(prefix string) (uint64, error) {
	p, pn := cText(prefix)
	return storeCall(s, goUint64, func(store *C.ckv_store, count *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_delete_prefix(store, p, pn, count, cerr)
	})
}

// Keys returns the live keys under prefix, sorted. A prefix ending in "/" is
// segment-aligned; any other matches byte-wise.
func (s *Store) Keys(prefix string) ([]string, error) {
	p, pn := cText(prefix)
	return storeCall(s, keysFromC, func(store *C.ckv_store, list **C.ckv_key_list, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_keys(store, p, pn, list, cerr)
	})
}

// List returns the live entries under prefix, sorted by key.
func (s *Store) List(prefix string) ([]Entry, error) {
	p, pn := cText(prefix)
	return storeCall(s, entriesFromC, func(store *C.ckv_store, list **C.ckv_entry_list, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_list(store, p, pn, list, cerr)
	})
}

// History returns the retained revisions of key, oldest first, tombstones included;
// ErrNotFound if none is retained.
func (s *Store) History(key string) ([]Entry, error) {
	k, kn := cText(key)
	return storeCall(s, entriesFromC, func(store *C.ckv_store, list **C.ckv_entry_list, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_history(store, k, kn, list, cerr)
	})
}

// LastRevision returns the store's latest revision (0 when nothing was ever written).
func (s *Store) LastRevision() (uint64, error) {
	return storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_last_revision(store, revision, cerr)
	})
}

// Version is the library's version, such as "0.1.0".
func Version() string {
	return C.GoString(C.ckv_version())
}
