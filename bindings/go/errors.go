// The binding's half of coordkv's one error vocabulary.
//
// Every failing C call hands back a ckv_status and, through its own err_out, a ckv_error;
// errorFrom turns the pair into an *Error right away, on the goroutine that made the call,
// so the message can never belong to another call (a thread-local "last error" would,
// since goroutines hop between OS threads). Each status has one sentinel, and *Error.Is
// matches it, so callers write errors.Is(err, coordkv.ErrConflict) and reach the details
// (message, current revision) with errors.As. Status and its codes are in codes.go.

package coordkv

// #include "coordkv.h"
import "C"

import "errors"

// One sentinel per failure status; match them with errors.Is.
var (
	ErrNotFound         = newSentinel(StatusNotFound)
	ErrConflict         = newSentinel(StatusConflict)
	ErrInvalidArgument  = newSentinel(StatusInvalidArgument)
	ErrTimeout          = newSentinel(StatusTimeout)
	ErrClosed           = newSentinel(StatusClosed)
	ErrUnavailable      = newSentinel(StatusUnavailable)
	ErrUnauthorized     = newSentinel(StatusUnauthorized)
	ErrLimit            = newSentinel(StatusLimit)
	ErrUnsupported      = newSentinel(StatusUnsupported)
	ErrCanceled         = newSentinel(StatusCanceled)
	ErrInternal         = newSentinel(StatusInternal)
	ErrPermissionDenied = newSentinel(StatusPermissionDenied)
	ErrLeaseNotFound    = newSentinel(StatusLeaseNotFound)
)

// sentinels is each failure status's sentinel, filled in by newSentinel as the
// variables above are initialized.
var sentinels = map[Status]error{}

func newSentinel(status Status) error {
	sentinel := errors.New("coordkv: " + status.String())
	sentinels[status] = sentinel
	return sentinel
}

// Error is a failed call: its status, the library's message for that very call, and for
// a CONFLICT the key's revision when the write was refused.
type Error struct {
	Status Status
	// Message comes from the failing call's ckv_error and starts with the status name.
	Message string
	// CurrentRevision is, for StatusConflict, the key's latest revision (0 if the key
	// has none retained); 0 for every other status.
	CurrentRevision uint64

	// cause is the Go error that made a ReadModifyWrite callback abort, if any.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return "coordkv: " + e.Message + ": " + e.cause.Error()
	}
	return "coordkv: " + e.Message
}

// Is reports whether target is the sentinel of e's status.
func (e *Error) Is(target error) bool {
	sentinel, known := sentinels[e.Status]
	return known && target == sentinel
}

// Unwrap gives the error a ReadModifyWrite callback returned (or its *PanicError), so
// errors.Is and errors.As reach the caller's own error through the CANCELED one.
func (e *Error) Unwrap() error {
	return e.cause
}

// callC runs one C call that reports failure through its own err_out and has one output:
// on CKV_OK the result is convert(output) (convert also frees what the library
// allocated); otherwise the zero R and the call's status and message as an *Error.
// The header leaves outputs untouched on failure, so nothing is left to free then.
func callC[O, R any](convert func(O) R, call func(out *O, cerr **C.ckv_error) C.ckv_status) (R, error) {
	var out O
	var cerr *C.ckv_error
	if err := errorFrom(call(&out, &cerr), cerr); err != nil {
		var zero R
		return zero, err
	}
	return convert(out), nil
}

// asIs is callC's convert for an output kept as it is.
func asIs[T any](v T) T {
	return v
}

// errorFrom converts a call's status and err_out into an error and frees the ckv_error.
func errorFrom(status C.ckv_status, cerr *C.ckv_error) error {
	if status == C.CKV_OK {
		return nil
	}
	e := &Error{Status: Status(status)}
	if cerr == nil {
		e.Message = e.Status.String()
		return e
	}
	e.Message = C.GoString(C.ckv_error_message(cerr))
	e.CurrentRevision = uint64(C.ckv_error_current_revision(cerr))
	C.ckv_error_free(cerr)
	return e
}

// argumentError is for the one thing the binding refuses before calling C: a Go string
// with a NUL byte where the header takes a NUL-terminated string, which C would
// otherwise read as a shorter, different string.
func argumentError(what string) error {
	return newError(StatusInvalidArgument, what+" contains a NUL byte")
}

// newError is a failure the binding reports itself, its message spelled as the library
// spells one: the status name (the library's), ": ", then text.
func newError(status Status, text string) *Error {
	return &Error{Status: status, Message: status.String() + ": " + text}
}
