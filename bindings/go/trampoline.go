// The Go functions the library calls back: during ckv_read_modify_write, when a watch
// has events waiting, and once when a lease is lost. They are handed to C as function pointers of the header's
// types; the one-line prototypes below are all the C this needs (a file with //export may
// only declare, never define, C in its preamble).
//
// A callback's void *user_data is a small C block holding a cgo.Handle (userData), never
// the integer handle itself cast to a pointer: go vet refuses that conversion, and a small
// integer in a pointer-typed variable trips Go's invalid-pointer check on stack copies.
//
// Nothing Go-specific may cross back into C: a panic is recovered here and becomes
// CKV_CANCELED, and the current value is copied before the borrowed entry goes away.

package coordkv

// #include <stdint.h>
// #include <stdlib.h>
// #include "coordkv.h"
// extern ckv_status coordkvGoRmwTrampoline(void *, ckv_entry *, ckv_rmw_result *);
// extern void coordkvGoWatchReady(void *);
// extern void coordkvGoLeaseLost(void *, uint64_t, char *);
import "C"

import (
	"runtime/cgo"
	"runtime/debug"
	"unsafe"
)

// The callbacks as the header's function pointer types. The rmw and lost prototypes
// take ckv_entry * and char * where the header has const ckv_entry * and const char *:
// cgo cannot spell const in an exported function, and the two are passed alike.
var (
	rmwCallback   = C.ckv_rmw_fn(C.coordkvGoRmwTrampoline)
	readyCallback = C.ckv_ready_fn(C.coordkvGoWatchReady)
	lostCallback  = C.ckv_lease_lost_fn(C.coordkvGoLeaseLost)
)

// userData carries a Go value to a callback: block is C memory holding a cgo.Handle of
// the value, passed as the callback's user_data.
type userData struct {
	handle cgo.Handle
	block  unsafe.Pointer
}

func newUserData(value any) userData {
	handle := cgo.NewHandle(value)
	block := C.malloc(C.sizeof_uintptr_t)
	*(*C.uintptr_t)(block) = C.uintptr_t(handle)
	return userData{handle: handle, block: block}
}

// free forgets the value and frees the block; call it only once the library can no
// longer call back with it.
func (u userData) free() {
	u.handle.Delete()
	C.free(u.block)
}

// userValue is the value behind a callback's user_data.
func userValue(block unsafe.Pointer) any {
	return cgo.Handle(*(*C.uintptr_t)(block)).Value()
}

// takeUserValue is the value behind a user_data the library never passes again: it
// forgets the value and frees the block.
func takeUserValue(block unsafe.Pointer) any {
	data := userData{handle: cgo.Handle(*(*C.uintptr_t)(block)), block: block}
	value := data.handle.Value()
	data.free()
	return value
}

//export coordkvGoRmwTrampoline
func coordkvGoRmwTrampoline(data unsafe.Pointer, current *C.ckv_entry, result *C.ckv_rmw_result) (status C.ckv_status) {
	var call *rmwCall
	defer func() {
		if recovered := recover(); recovered != nil {
			if call != nil {
				call.failure = &PanicError{Value: recovered, Stack: debug.Stack()}
			}
			status = C.CKV_CANCELED
		}
	}()
	call = userValue(data).(*rmwCall)

	var value []byte
	exists := current != nil
	if exists {
		value = entryValue(current)
	}
	next, err := call.modify(value, exists)
	if err != nil {
		call.failure = err
		return C.CKV_CANCELED
	}
	v, vn := cBytes(next)
	return C.ckv_rmw_set_value(result, v, vn)
}

//export coordkvGoWatchReady
func coordkvGoWatchReady(data unsafe.Pointer) {
	// On a library delivery thread shared by every watch: only signal, never wait.
	select {
	case userValue(data).(*Watcher).ready <- struct{}{}:
	default:
	}
}

//export coordkvGoLeaseLost
func coordkvGoLeaseLost(data unsafe.Pointer, id C.uint64_t, reason *C.char) {
	// On the store's keepalive thread, or inside the call that ended the lease
	// (ckv_lease_revoke, ckv_lease_abandon, ckv_close): only record and close a channel,
	// never wait and never call the library. The library calls this once per lease, so
	// the user data is freed here, after its only use.
	takeUserValue(data).(*leaseState).lose(uint64(id), C.GoString(reason))
}
