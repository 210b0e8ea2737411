// The Go functions the library calls back: during ckv_read_modify_write, and when a
// watch has events waiting. They are handed to C as function pointers of the header's
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
import "C"

import (
	"runtime/cgo"
	"runtime/debug"
	"unsafe"
)

// The callbacks as the header's function pointer types. The rmw prototype takes
// ckv_entry * where ckv_rmw_fn has const ckv_entry *: cgo cannot spell const in an
// exported function, and the two are passed alike.
var (
	rmwCallback   = C.ckv_rmw_fn(C.coordkvGoRmwTrampoline)
	readyCallback = C.ckv_ready_fn(C.coordkvGoWatchReady)
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
