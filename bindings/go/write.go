// Write options: how a write is stamped (attached to a lease, expiring, quiet). They are
// Go's functional options over the header's ckv_write_options: Put, Create and Update
// take them variadically, so a call without options stays the plain C call (ckv_put,
// ...) and one with options becomes its _with form, with the struct filled by
// ckv_write_options_init first so that fields the header adds later keep their defaults.
// The library judges every combination (a lease and a TTL together, an ended lease, a
// server without TTLs); the binding only converts units.

package coordkv

// #include "coordkv.h"
import "C"

import "time"

// WriteOption stamps a write of Put, Create or Update.
type WriteOption func(*writeOptions)

type writeOptions struct {
	lease uint64
	ttl   time.Duration
	quiet bool
}

// WithLease attaches the key to lease id (see Store.Grant and Lease.ID): it lives as
// long as the lease and is deleted when the lease is revoked. An ended lease fails the
// write with ErrLeaseNotFound; a lease together with WithTTL is ErrInvalidArgument.
func WithLease(id uint64) WriteOption {
	return func(o *writeOptions) { o.lease = id }
}

// WithTTL makes the key expire (an EXPIRED event) ttl after the write unless it is
// written again first. It is passed in whole milliseconds, rounded up; a backend may
// round it up further (NATS: whole seconds). 0 means no TTL.
func WithTTL(ttl time.Duration) WriteOption {
	return func(o *writeOptions) { o.ttl = ttl }
}

// Quiet makes the write quiet: it gets a revision and reads see it, but only watchers
// with WatchOptions.QuietWrites receive it.
func Quiet() WriteOption {
	return func(o *writeOptions) { o.quiet = true }
}

// cWriteOptions fills the header's struct from opts (nil options are skipped).
func cWriteOptions(opts []WriteOption) (C.ckv_write_options, error) {
	var given writeOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&given)
		}
	}
	var options C.ckv_write_options
	C.ckv_write_options_init(&options)
	ttl, err := ceilMilliseconds("WithTTL", given.ttl)
	if err != nil {
		return options, err
	}
	options.lease = C.uint64_t(given.lease)
	options.ttl_ms = C.uint64_t(ttl)
	options.quiet = C.bool(given.quiet)
	return options, nil
}

// ceilMilliseconds is d in whole milliseconds, rounded up so that a TTL is never
// shortened; a negative d, which the header's unsigned milliseconds cannot carry, is
// ErrInvalidArgument.
func ceilMilliseconds(what string, d time.Duration) (uint64, error) {
	if d < 0 {
		return 0, newError(StatusInvalidArgument, what+": a duration must not be negative, got "+d.String())
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond), nil
}
