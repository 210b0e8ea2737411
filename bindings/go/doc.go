// Package coordkv is the Go binding of coordkv, a revisioned key-value store for cluster
// coordination that runs in-process ("mem://") or on NATS JetStream KV ("nats://...").
//
// The binding is a thin cgo translation of include/coordkv.h: each Store method calls
// one C function, and everything the store means — key rules, revisions, compare-and-swap,
// retries, closed handles — is decided by the library, so Go, C and Python behave alike.
//
//	s, err := coordkv.Open("mem://")
//	if err != nil { ... }
//	defer s.Close()
//	rev, err := s.Put("/nodes/n-1", []byte("up"))
//	_, err = s.Create("/leader", []byte("n-1"))
//	if errors.Is(err, coordkv.ErrConflict) {
//		var e *coordkv.Error
//		errors.As(err, &e) // e.CurrentRevision is the leader key's revision
//	}
//
// Errors: every failure is an *Error carrying the ckv_status, the message of that very
// call and, on conflict, the key's current revision; errors.Is matches it against one
// sentinel per status (ErrNotFound, ErrConflict, ...).
//
// Keys are strings passed byte for byte (no NUL terminator), so a key the library
// refuses — invalid UTF-8, an embedded NUL — is refused with ErrInvalidArgument rather
// than silently changed. Values are []byte and copied in both directions.
//
// Linking: by default the package links libcoordkv.so from the repository's
// target/debug with an rpath; the build tag coordkv_static links libcoordkv.a instead.
// CGO_LDFLAGS selects another directory; see README.md.
//
// Every C resource has one Go owner. A Store holds its ckv_store handle as the header's
// type (handles have bit 63 set and are never addresses, so Go's garbage collector
// ignores them), closes it in Close, and a finalizer closes stores that were dropped
// open. A Watcher holds its ckv_watch the same way; a goroutine moves its events from the
// library onto a channel until the watch ends, Close is called or its context is done.
// Callbacks receive a cgo.Handle in a small C block as user data, never a Go pointer.
//
// Leases: Store.Grant returns a *Lease the library keeps alive; keys attached with
// WithLease(lease.ID()) live as long as it does, and its Done channel is closed by the
// library's lost callback. WithTTL and Quiet stamp single writes the same way.
package coordkv
