// Entries cross from C into Go by copy: the key and value bytes are copied out of the
// ckv_entry (or list) before it is freed or, in a callback, before the borrow ends, so
// no Go value ever points into library memory. Watch events reuse entryFromC.

package coordkv

// #include "coordkv.h"
import "C"

import (
	"time"
	"unsafe"
)

// Entry is one write to one key at one store-wide revision.
type Entry struct {
	Key       string
	Value     []byte
	Revision  uint64
	Operation Operation
	// Timestamp is when the backend recorded the write.
	Timestamp time.Time
	// Lease is the lease the write was attached to (0: none).
	Lease uint64
	// Quiet marks a quiet write: a lease keepalive or a write with the Quiet option,
	// delivered only to watchers with WatchOptions.QuietWrites.
	Quiet bool
}

// entryFromC copies an entry the caller keeps (or borrows).
func entryFromC(entry *C.ckv_entry) Entry {
	var keyLen C.size_t
	key := C.ckv_entry_key(entry, &keyLen)
	return Entry{
		Key:       goText(key, keyLen),
		Value:     entryValue(entry),
		Revision:  uint64(C.ckv_entry_revision(entry)),
		Operation: Operation(C.ckv_entry_operation(entry)),
		Timestamp: time.Unix(0, int64(C.ckv_entry_timestamp_ns(entry))),
		Lease:     uint64(C.ckv_entry_lease(entry)),
		Quiet:     bool(C.ckv_entry_is_quiet(entry)),
	}
}

// entryValue copies the value; never nil, so an empty value reads as []byte{}.
func entryValue(entry *C.ckv_entry) []byte {
	var valueLen C.size_t
	value := C.ckv_entry_value(entry, &valueLen)
	out := make([]byte, int(valueLen))
	if valueLen > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(value)), int(valueLen)))
	}
	return out
}

// takeEntry copies an entry the library handed over and frees it.
func takeEntry(entry *C.ckv_entry) Entry {
	defer C.ckv_entry_free(entry)
	return entryFromC(entry)
}

// entriesFromC copies a list and frees it.
func entriesFromC(list *C.ckv_entry_list) []Entry {
	defer C.ckv_entry_list_free(list)
	return copyList(C.ckv_entry_list_len(list), func(i C.size_t) Entry {
		return entryFromC(C.ckv_entry_list_get(list, i))
	})
}

// keysFromC copies a key list and frees it.
func keysFromC(list *C.ckv_key_list) []string {
	defer C.ckv_key_list_free(list)
	return copyList(C.ckv_key_list_len(list), func(i C.size_t) string {
		var keyLen C.size_t
		key := C.ckv_key_list_get(list, i, &keyLen)
		return goText(key, keyLen)
	})
}

// copyList copies the n items of a C list, item i by item(i).
func copyList[T any](n C.size_t, item func(i C.size_t) T) []T {
	items := make([]T, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		items = append(items, item(i))
	}
	return items
}

// goText copies a (const char *, size_t) the library returned into a Go string.
func goText(text *C.char, n C.size_t) string {
	return C.GoStringN(text, C.int(n))
}

// goUint64 is the Go value of a uint64_t output (a revision or a count).
func goUint64(v C.uint64_t) uint64 {
	return uint64(v)
}

// cText passes a Go string as the header's (const char *, size_t) without copying and
// without a terminator, so every byte — NUL and invalid UTF-8 included — reaches the
// library, which is the one to judge it. cgo pins the bytes for the call.
func cText(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// cBytes passes a Go slice as (const uint8_t *, size_t); the library copies what it keeps.
func cBytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}
