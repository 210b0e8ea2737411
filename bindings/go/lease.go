// Leases: the header's ckv_lease_* calls, with the lost notification as a channel.
//
// The library keeps every lease it granted alive by itself (its keepalive thread) and
// tells the holder once when the lease is lost, through the ckv_lease_options.lost
// callback chosen at grant time. Grant wires that callback to an exported Go function
// (trampoline.go) whose user_data is a cgo.Handle of the lease's leaseState in a C
// block, as for the binding's other callbacks; the callback only records the reason and
// closes Done. The library calls it exactly once — also when the store closes — so the
// trampoline frees the block itself after that one call. No timer, keepalive or expiry
// runs in Go.
//
// The ckv_lease object ckv_lease_grant hands over is read (id, granted TTL) and freed at
// once: freeing it does not end the lease, and its lost state (ckv_lease_is_lost,
// ckv_lease_wait_lost) is what the callback already delivers. Every other call names the
// lease by id on a store, as the header does, so a Lease holds no C pointer, only its
// Store (which keeps the store reachable while the Lease is, like a Watcher).
//
// Contexts: the library's lease calls block on the backend, bounded by the store's
// request timeout, and cannot be interrupted; a context is checked before each call.

package coordkv

// #include <stdint.h>
// #include "coordkv.h"
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// LeaseOption shapes Store.Grant.
type LeaseOption func(*leaseOptions)

type leaseOptions struct {
	keepOnClose bool
}

// KeepOnClose keeps the lease (and its keys) when its store closes: it then expires
// after its TTL unless another process keeps it alive. By default closing the store
// revokes the leases it granted.
func KeepOnClose() LeaseOption {
	return func(o *leaseOptions) { o.keepOnClose = true }
}

// Lease is a lease granted by Store.Grant, which its store keeps alive until it is
// revoked, abandoned, lost or the store closes. Dropping a Lease changes nothing about
// the lease itself. Safe for use by many goroutines at once.
type Lease struct {
	store *Store
	id    uint64
	ttl   time.Duration
	state *leaseState
}

// leaseState is what the lost callback reaches through its cgo.Handle. It is apart from
// Lease so that a handle pending in the library does not keep the Lease reachable.
type leaseState struct {
	done chan struct{}
	// err is written once, before done is closed, and read only after.
	err error
}

// lose is the lost callback's work: record why, then close done. Never blocks.
func (st *leaseState) lose(id uint64, reason string) {
	st.err = &LeaseLostError{ID: id, Reason: reason}
	close(st.done)
}

// LeaseLostError is Lease.Err's answer once the lease is lost.
type LeaseLostError struct {
	// ID is the lease's id.
	ID uint64
	// Reason is the library's message: revoked, abandoned, expired, not renewed for a
	// whole TTL, or its store was closed.
	Reason string
}

func (e *LeaseLostError) Error() string {
	return "coordkv: lease lost: " + e.Reason
}

// Grant grants a lease of at least ttl (whole milliseconds, rounded up; the library may
// grant more: NATS grants whole seconds, and no less than Config.MarkerTTLMs) and keeps
// it alive until it is revoked, abandoned or lost, or the store closes, which revokes it
// unless KeepOnClose was given. Attach keys to it with WithLease(lease.ID()).
// Errors: ErrInvalidArgument for a ttl of 0, ErrUnsupported on NATS before 2.11.2,
// ErrUnavailable; ctx's error if it is done before the call.
func (s *Store) Grant(ctx context.Context, ttl time.Duration, opts ...LeaseOption) (*Lease, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	ttlMs, err := ceilMilliseconds("ttl", ttl)
	if err != nil {
		return nil, err
	}
	var given leaseOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&given)
		}
	}
	state := &leaseState{done: make(chan struct{})}
	data := newUserData(state)
	var options C.ckv_lease_options
	C.ckv_lease_options_init(&options)
	options.keep_on_close = C.bool(given.keepOnClose)
	options.lost = lostCallback
	options.user_data = data.block
	lease, err := storeCall(s, asIs[*C.ckv_lease], func(store *C.ckv_store, lease **C.ckv_lease, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_lease_grant(store, C.uint64_t(ttlMs), &options, lease, cerr)
	})
	if err != nil {
		data.free() // no lease, so no callback
		return nil, err
	}
	// From here the block belongs to the callback, which may even have run already (a
	// store closed during the grant).
	defer C.ckv_lease_free(lease)
	return &Lease{
		store: s,
		id:    uint64(C.ckv_lease_id(lease)),
		ttl:   time.Duration(C.ckv_lease_ttl_ms(lease)) * time.Millisecond,
		state: state,
	}, nil
}

// ID is the lease's id, what WithLease and the store's lease calls take.
func (l *Lease) ID() uint64 { return l.id }

// TTL is the TTL granted: at least the one asked for.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Done is closed when the lease is lost: revoked (by any store), abandoned, expired,
// not renewed for a whole TTL, or its store was closed (with KeepOnClose too: the store
// no longer keeps it alive). After Revoke or Abandon returns it is closed already.
func (l *Lease) Done() <-chan struct{} { return l.state.done }

// Err is nil while Done is open, then a *LeaseLostError saying why the lease was lost.
func (l *Lease) Err() error {
	select {
	case <-l.state.done:
		return l.state.err
	default:
		return nil
	}
}

// Revoke ends the lease and deletes every key attached to it (DELETE events);
// ErrLeaseNotFound if it has ended already. See Store.RevokeLease.
func (l *Lease) Revoke(ctx context.Context) error {
	return l.store.RevokeLease(ctx, l.id)
}

// Abandon stops keeping the lease alive without revoking it: it and its keys expire after
// the TTL (EXPIRED events), as if this process had died. See Store.AbandonLease.
func (l *Lease) Abandon() error {
	return l.store.AbandonLease(l.id)
}

// KeepAlive renews the lease now (the library does so by itself at about a third of the
// TTL) and returns the time it has left. See Store.KeepAliveLease.
func (l *Lease) KeepAlive(ctx context.Context) (time.Duration, error) {
	return l.store.KeepAliveLease(ctx, l.id)
}

// TimeToLive reports the lease's granted TTL, the time it has left and, withKeys, its
// keys. See Store.LeaseTimeToLive.
func (l *Lease) TimeToLive(ctx context.Context, withKeys bool) (LeaseInfo, error) {
	return l.store.LeaseTimeToLive(ctx, l.id, withKeys)
}

// LeaseInfo is what Store.LeaseTimeToLive reports.
type LeaseInfo struct {
	ID uint64
	// TTL is the TTL the lease was granted.
	TTL time.Duration
	// Remaining is how long until it expires unless renewed.
	Remaining time.Duration
	// Keys are the keys attached to it, sorted; nil unless asked for.
	Keys []string
}

// RevokeLease ends lease id and deletes every key attached to it (DELETE events). Any
// store may revoke any lease. ErrLeaseNotFound when it has already ended.
func (s *Store) RevokeLease(ctx context.Context, id uint64) error {
	if err := contextError(ctx); err != nil {
		return err
	}
	return storeDo(s, func(store *C.ckv_store, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_lease_revoke(store, C.uint64_t(id), cerr)
	})
}

// AbandonLease stops keeping lease id alive without revoking it: it and its keys expire
// after the TTL (EXPIRED events), as if this process had died. ErrLeaseNotFound when
// this store does not keep it alive. It does not wait on the backend.
func (s *Store) AbandonLease(id uint64) error {
	return storeDo(s, func(store *C.ckv_store, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_lease_abandon(store, C.uint64_t(id), cerr)
	})
}

// KeepAliveLease renews lease id now and returns the time it has left;
// ErrLeaseNotFound once it has ended.
func (s *Store) KeepAliveLease(ctx context.Context, id uint64) (time.Duration, error) {
	if err := contextError(ctx); err != nil {
		return 0, err
	}
	return storeCall(s, goMilliseconds, func(store *C.ckv_store, remaining *C.uint64_t, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_lease_keep_alive(store, C.uint64_t(id), remaining, cerr)
	})
}

// leaseTimeToLive holds the outputs of ckv_lease_time_to_live.
type leaseTimeToLive struct {
	ttl, remaining C.uint64_t
	keys           *C.ckv_key_list
}

// LeaseTimeToLive reports lease id's granted TTL, the time it has left and, withKeys,
// the keys attached to it; ErrLeaseNotFound once it has ended.
func (s *Store) LeaseTimeToLive(ctx context.Context, id uint64, withKeys bool) (LeaseInfo, error) {
	if err := contextError(ctx); err != nil {
		return LeaseInfo{}, err
	}
	convert := func(out leaseTimeToLive) LeaseInfo {
		info := LeaseInfo{ID: id, TTL: goMilliseconds(out.ttl), Remaining: goMilliseconds(out.remaining)}
		if withKeys {
			info.Keys = keysFromC(out.keys)
		}
		return info
	}
	return storeCall(s, convert, func(store *C.ckv_store, out *leaseTimeToLive, cerr **C.ckv_error) C.ckv_status {
		var keys **C.ckv_key_list // NULL: the library leaves the keys out
		if withKeys {
			keys = &out.keys
		}
		return C.ckv_lease_time_to_live(store, C.uint64_t(id), &out.ttl, &out.remaining, keys, cerr)
	})
}

// leaseList holds the outputs of ckv_lease_list. ids is kept as an integer, never in a
// pointer variable: for an empty list the library hands back a dangling non-NULL address
// such as 0x8 (an empty Rust boxed slice), which Go's stack copier would reject as an
// invalid pointer.
type leaseList struct {
	ids   C.uintptr_t
	count C.size_t
}

// Leases returns the ids of the store's live leases (every process's), sorted.
func (s *Store) Leases(ctx context.Context) ([]uint64, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	return storeCall(s, takeLeaseIDs, func(store *C.ckv_store, out *leaseList, cerr **C.ckv_error) C.ckv_status {
		return C.ckv_lease_list(store, (**C.uint64_t)(unsafe.Pointer(&out.ids)), &out.count, cerr)
	})
}

// takeLeaseIDs copies the ids and frees them. An empty list owns no memory, and its
// address is not one Go may hold as a pointer, so it is neither read nor passed back.
func takeLeaseIDs(list leaseList) []uint64 {
	ids := make([]uint64, int(list.count))
	if list.count == 0 {
		return ids
	}
	// A real address now: reinterpret the integer's bits as the pointer they are.
	first := *(**C.uint64_t)(unsafe.Pointer(&list.ids))
	defer C.ckv_lease_ids_free(first, list.count)
	for i, id := range unsafe.Slice(first, int(list.count)) {
		ids[i] = uint64(id)
	}
	return ids
}

// goMilliseconds is a uint64_t of milliseconds as a time.Duration.
func goMilliseconds(ms C.uint64_t) time.Duration {
	return time.Duration(ms) * time.Millisecond
}

// contextError is why a call that takes ctx must not start: a nil ctx, or one done.
func contextError(ctx context.Context) error {
	if ctx == nil {
		return newError(StatusInvalidArgument, "ctx is nil; pass context.Background() for none")
	}
	return ctx.Err()
}
