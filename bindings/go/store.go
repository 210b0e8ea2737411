// Store: one open ckv_store and the key-value calls on it, each a direct translation of
// its C function.
//
// Shape of every call: pass keys and values as (pointer, length) straight from Go memory
// (cgo pins them for the call, the library copies what it keeps), receive outputs and
// the ckv_error through this call's own out-parameters, copy results into Go values,
// free what the library allocated, then runtime.KeepAlive(s) so the finalizer cannot
// close the store while the call is still running. The only C value kept across calls is
// the store handle, in a field of the header's own type (see Store).
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
	if strings.IndexByte(url, 0) >= 0 {
		return nil, argumentError("url")
	}
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	var handle *C.ckv_store
	var cerr *C.ckv_error
	if err := errorFrom(C.ckv_open(curl, &handle, &cerr), cerr); err != nil {
		return nil, err
	}
	return newStore(handle), nil
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
	if strings.IndexByte(text, 0) >= 0 {
		return nil, argumentError("json config")
	}
	cjson := C.CString(text)
	defer C.free(unsafe.Pointer(cjson))
	var handle *C.ckv_store
	var cerr *C.ckv_error
	if err := errorFrom(C.ckv_open_config(cjson, &handle, &cerr), cerr); err != nil {
		return nil, err
	}
	return newStore(handle), nil
}

func newStore(handle *C.ckv_store) *Store {
	s := &Store{handle: handle}
	runtime.SetFinalizer(s, (*Store).Close)
	return s
}

// Close closes the store; every later call fails with ErrClosed. Calling it again does
// nothing. It always returns nil (the library's close cannot fail); the result is there
// so a Store is an io.Closer.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		runtime.SetFinalizer(s, nil)
		C.ckv_close(s.handle)
	}
	return nil
}

// Put writes value under key unconditionally and returns the new revision.
func (s *Store) Put(key string, value []byte) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	var revision C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_put(s.handle, k, kn, v, vn, &revision, &cerr)
	runtime.KeepAlive(s)
	return uint64(revision), errorFrom(status, cerr)
}

// Get returns the latest live entry of key; ErrNotFound if it was never written, or was
// deleted, purged or expired.
func (s *Store) Get(key string) (Entry, error) {
	k, kn := cText(key)
	var entry *C.ckv_entry
	var cerr *C.ckv_error
	status := C.ckv_get(s.handle, k, kn, &entry, &cerr)
	runtime.KeepAlive(s)
	if err := errorFrom(status, cerr); err != nil {
		return Entry{}, err
	}
	defer C.ckv_entry_free(entry)
	return entryFromC(entry), nil
}

// Create writes only if key has no live value (a delete tombstone counts as none);
// otherwise ErrConflict, with the key's revision in (*Error).CurrentRevision.
func (s *Store) Create(key string, value []byte) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	var revision C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_create(s.handle, k, kn, v, vn, &revision, &cerr)
	runtime.KeepAlive(s)
	return uint64(revision), errorFrom(status, cerr)
}

// Update writes only if key's latest revision is revision; otherwise ErrConflict, with
// the key's revision in (*Error).CurrentRevision.
func (s *Store) Update(key string, value []byte, revision uint64) (uint64, error) {
	k, kn := cText(key)
	v, vn := cBytes(value)
	var written C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_update(s.handle, k, kn, v, vn, C.uint64_t(revision), &written, &cerr)
	runtime.KeepAlive(s)
	return uint64(written), errorFrom(status, cerr)
}

// Delete writes a delete tombstone for key and returns its revision. A revision of 0
// deletes unconditionally; any other makes it conditional like Update.
func (s *Store) Delete(key string, revision uint64) (uint64, error) {
	k, kn := cText(key)
	var written C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_delete(s.handle, k, kn, C.uint64_t(revision), &written, &cerr)
	runtime.KeepAlive(s)
	return uint64(written), errorFrom(status, cerr)
}

// Purge drops key's history, leaving a purge marker whose revision it returns.
func (s *Store) Purge(key string) (uint64, error) {
	k, kn := cText(key)
	var revision C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_purge(s.handle, k, kn, &revision, &cerr)
	runtime.KeepAlive(s)
	return uint64(revision), errorFrom(status, cerr)
}

// DeletePrefix deletes every live key under prefix and returns how many it deleted.
func (s *Store) DeletePrefix(prefix string) (uint64, error) {
	p, pn := cText(prefix)
	var count C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_delete_prefix(s.handle, p, pn, &count, &cerr)
	runtime.KeepAlive(s)
	return uint64(count), errorFrom(status, cerr)
}

// Keys returns the live keys under prefix, sorted. A prefix ending in "/" is
// segment-aligned; any other matches byte-wise.
func (s *Store) Keys(prefix string) ([]string, error) {
	p, pn := cText(prefix)
	var list *C.ckv_key_list
	var cerr *C.ckv_error
	status := C.ckv_keys(s.handle, p, pn, &list, &cerr)
	runtime.KeepAlive(s)
	if err := errorFrom(status, cerr); err != nil {
		return nil, err
	}
	return keysFromC(list), nil
}

// List returns the live entries under prefix, sorted by key.
func (s *Store) List(prefix string) ([]Entry, error) {
	p, pn := cText(prefix)
	var list *C.ckv_entry_list
	var cerr *C.ckv_error
	status := C.ckv_list(s.handle, p, pn, &list, &cerr)
	runtime.KeepAlive(s)
	if err := errorFrom(status, cerr); err != nil {
		return nil, err
	}
	return entriesFromC(list), nil
}

// History returns the retained revisions of key, oldest first, tombstones included;
// ErrNotFound if none is retained.
func (s *Store) History(key string) ([]Entry, error) {
	k, kn := cText(key)
	var list *C.ckv_entry_list
	var cerr *C.ckv_error
	status := C.ckv_history(s.handle, k, kn, &list, &cerr)
	runtime.KeepAlive(s)
	if err := errorFrom(status, cerr); err != nil {
		return nil, err
	}
	return entriesFromC(list), nil
}

// LastRevision returns the store's latest revision (0 when nothing was ever written).
func (s *Store) LastRevision() (uint64, error) {
	var revision C.uint64_t
	var cerr *C.ckv_error
	status := C.ckv_last_revision(s.handle, &revision, &cerr)
	runtime.KeepAlive(s)
	return uint64(revision), errorFrom(status, cerr)
}

// Version is the library's version, such as "0.1.0".
func Version() string {
	return C.GoString(C.ckv_version())
}
