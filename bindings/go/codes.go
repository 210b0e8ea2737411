// The header's codes: one Go type per group of #defines (statuses, operations, event
// kinds, cancel reasons), with the header's values, named as the library names them.
// vocabulary_test.go checks every group against include/coordkv.h.

package coordkv

// #include "coordkv.h"
import "C"

import "strings"

// Status is a ckv_status code: why a call failed.
type Status int32

// The ckv_status codes, with the values the header gives them.
const (
	StatusOK               Status = C.CKV_OK
	StatusNotFound         Status = C.CKV_NOT_FOUND
	StatusConflict         Status = C.CKV_CONFLICT
	StatusInvalidArgument  Status = C.CKV_INVALID_ARGUMENT
	StatusTimeout          Status = C.CKV_TIMEOUT
	StatusClosed           Status = C.CKV_CLOSED
	StatusUnavailable      Status = C.CKV_UNAVAILABLE
	StatusUnauthorized     Status = C.CKV_UNAUTHORIZED
	StatusLimit            Status = C.CKV_LIMIT
	StatusUnsupported      Status = C.CKV_UNSUPPORTED
	StatusCanceled         Status = C.CKV_CANCELED
	StatusInternal         Status = C.CKV_INTERNAL
	StatusPermissionDenied Status = C.CKV_PERMISSION_DENIED
	StatusLeaseNotFound    Status = C.CKV_LEASE_NOT_FOUND
)

// String is the status's name as the library spells it ("NOT_FOUND", ...).
func (s Status) String() string {
	return C.GoString(C.ckv_status_name(C.ckv_status(s)))
}

// Operation is what a write did to its key: a ckv_operation code.
type Operation int32

// The ckv_operation codes.
const (
	OpPut     Operation = C.CKV_OP_PUT
	OpDelete  Operation = C.CKV_OP_DELETE
	OpPurge   Operation = C.CKV_OP_PURGE
	OpExpired Operation = C.CKV_OP_EXPIRED
)

// String is the operation's name as the library spells it ("PUT", ..., "UNKNOWN").
func (o Operation) String() string {
	return C.GoString(C.ckv_operation_name(C.ckv_operation(o)))
}

// EventKind is what an event is: a CKV_EVENT_* code.
type EventKind int32

// The CKV_EVENT_* codes.
const (
	EventPut      EventKind = C.CKV_EVENT_PUT
	EventDelete   EventKind = C.CKV_EVENT_DELETE
	EventPurge    EventKind = C.CKV_EVENT_PURGE
	EventExpired  EventKind = C.CKV_EVENT_EXPIRED
	EventSynced   EventKind = C.CKV_EVENT_SYNCED
	EventProgress EventKind = C.CKV_EVENT_PROGRESS
	EventCanceled EventKind = C.CKV_EVENT_CANCELED
)

// String is the kind's name as the library spells it ("PUT", ..., "UNKNOWN").
func (k EventKind) String() string {
	return C.GoString(C.ckv_event_kind_name(C.ckv_event_type(k)))
}

// CancelReason is why a watch ended: a CKV_CANCEL_* code.
type CancelReason int32

// The CKV_CANCEL_* codes.
const (
	CancelClosed       CancelReason = C.CKV_CANCEL_CLOSED
	CancelOverflow     CancelReason = C.CKV_CANCEL_OVERFLOW
	CancelWatcherLimit CancelReason = C.CKV_CANCEL_WATCHER_LIMIT
	CancelHistoryLost  CancelReason = C.CKV_CANCEL_HISTORY_LOST
	CancelStoreClosed  CancelReason = C.CKV_CANCEL_STORE_CLOSED
)

// String is the library's name for the reason in lower case with spaces ("overflow",
// "store closed", ...), or "none" for a code the library does not name (0 included).
func (r CancelReason) String() string {
	name := C.GoString(C.ckv_cancel_reason_name(C.ckv_cancel_reason(r)))
	if name == "UNKNOWN" {
		return "none"
	}
	return strings.ToLower(strings.ReplaceAll(name, "_", " "))
}
