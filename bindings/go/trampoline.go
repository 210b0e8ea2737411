// The Go functions the library calls back: during ckv_read_modify_write, and when a
// watch has events waiting (both through shims in coordkv_go.h). It lives alone in this file because a file with //export may only
// declare, never define, C in its preamble.
//
// Nothing Go-specific may cross back into C: a panic is recovered here and becomes
// CKV_CANCELED, and the current value is copied before the borrowed entry goes away.

package coordkv

// #include <stdint.h>
// #include "coordkv.h"
import "C"

import (
	"runtime/cgo"
	"runtime/debug"
)

//export coordkvGoRmwTrampoline
func coordkvGoRmwTrampoline(callHandle C.uintptr_t, current *C.ckv_entry, result *C.ckv_rmw_result) (status C.ckv_status) {
	var call *rmwCall
	defer func() {
		if recovered := recover(); recovered != nil {
			if call != nil {
				call.failure = &PanicError{Value: recovered, Stack: debug.Stack()}
			}
			status = C.CKV_CANCELED
		}
	}()
	call = cgo.Handle(callHandle).Value().(*rmwCall)

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
func coordkvGoWatchReady(watcherHandle C.uintptr_t) {
	// On a library delivery thread shared by every watch: only signal, never wait.
	select {
	case cgo.Handle(watcherHandle).Value().(*Watcher).ready <- struct{}{}:
	default:
	}
}
