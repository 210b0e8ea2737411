// ReadModifyWrite: the library owns the read / modify / compare-and-swap / retry loop;
// Go only supplies the modify step.
//
// The Go function travels to C as a cgo.Handle in a C block (userData), never as a Go
// pointer; the library passes it back as user data to the exported trampoline
// (trampoline.go), which looks the call up, runs the function and hands the new value to
// ckv_rmw_set_value.
// When the function fails or panics the trampoline records why on the call and returns
// CKV_CANCELED, and the caller gets the library's CANCELED error wrapping that reason.

package coordkv

// #include "coordkv.h"
import "C"

import (
	"fmt"
)

// ModifyFunc computes a key's new value from its current one. exists is false (and
// current nil) when the key has no live value. It may run several times, once per
// attempt, and must not block on other writes to the same key. Returning an error
// aborts the ReadModifyWrite, which then returns that error wrapped in ErrCanceled.
type ModifyFunc func(current []byte, exists bool) ([]byte, error)

// PanicError is the reason a ReadModifyWrite was canceled when its ModifyFunc panicked:
// the panic is recovered before it can unwind through the library's frames.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("read_modify_write callback panicked: %v", p.Value)
}

// Unwrap gives the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// rmwCall is what the cgo.Handle refers to during one ReadModifyWrite.
type rmwCall struct {
	modify ModifyFunc
	// failure is the error or *PanicError that made the trampoline cancel.
	failure error
}

// ReadModifyWrite reads key, calls modify with its live value, and writes the result
// with create or update at the revision read (a delete tombstone's revision included).
// On a conflicting concurrent write the library retries with backoff, a bounded number
// of times, then fails with ErrConflict. It returns the revision written.
//
// If modify returns an error or panics, nothing is written and the result is an *Error
// with StatusCanceled that wraps modify's error (or a *PanicError): both
// errors.Is(err, ErrCanceled) and errors.Is(err, yourErr) hold.
func (s *Store) ReadModifyWrite(key string, modify ModifyFunc) (uint64, error) {
	call := &rmwCall{modify: modify}
	// The library calls back only during ckv_read_modify_write.
	data := newUserData(call)
	defer data.free()
	k, kn := cText(key)
	revision, err := storeCall(s, goUint64, func(store *C.ckv_store, revision *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_read_modify_write(store, k, kn, rmwCallback, data.block, revision, cerr)
	})
	if e, ok := err.(*Error); ok && e.Status == StatusCanceled && call.failure != nil {
		e.cause = call.failure
	}
	return revision, err
}
