/*
 * The C half of the Go binding: one-line adapters between Go's view of a value and the
 * header's, included by the Go files that call the C API.
 *
 * A ckv_store* is a generation-checked handle (slot index and generation packed into a
 * word), not an address. Go keeps it as a uintptr_t and never in a pointer-typed
 * variable: the garbage collector would read the word as a pointer, and once a slot's
 * generation climbs into the range where Go maps its heap it would chase it into the
 * heap. So every store call goes through an adapter that turns the integer back into a
 * ckv_store* on this side of the boundary.
 *
 * The read-modify-write callback's user data is a cgo.Handle, also an integer; the shim
 * below hands it to the exported Go trampoline (trampoline.go) unchanged.
 */

#ifndef COORDKV_GO_H
#define COORDKV_GO_H

#include <stdint.h>
#include <stdlib.h>
#include "coordkv.h"

static inline ckv_store *coordkv_go_store(uintptr_t store) {
    return (ckv_store *)store;
}

static inline ckv_status coordkv_go_open(const char *url, uintptr_t *store_out,
                                         ckv_error **err_out) {
    ckv_store *store = NULL;
    ckv_status status = ckv_open(url, &store, err_out);
    if (status == CKV_OK) {
        *store_out = (uintptr_t)store;
    }
    return status;
}

static inline ckv_status coordkv_go_open_config(const char *json, uintptr_t *store_out,
                                                ckv_error **err_out) {
    ckv_store *store = NULL;
    ckv_status status = ckv_open_config(json, &store, err_out);
    if (status == CKV_OK) {
        *store_out = (uintptr_t)store;
    }
    return status;
}

static inline void coordkv_go_close(uintptr_t store) {
    ckv_close(coordkv_go_store(store));
}

static inline ckv_status coordkv_go_put(uintptr_t store, const char *key, size_t key_len,
                                        const uint8_t *value, size_t value_len,
                                        uint64_t *revision_out, ckv_error **err_out) {
    return ckv_put(coordkv_go_store(store), key, key_len, value, value_len, revision_out,
                   err_out);
}

static inline ckv_status coordkv_go_get(uintptr_t store, const char *key, size_t key_len,
                                        ckv_entry **entry_out, ckv_error **err_out) {
    return ckv_get(coordkv_go_store(store), key, key_len, entry_out, err_out);
}

static inline ckv_status coordkv_go_create(uintptr_t store, const char *key, size_t key_len,
                                           const uint8_t *value, size_t value_len,
                                           uint64_t *revision_out, ckv_error **err_out) {
    return ckv_create(coordkv_go_store(store), key, key_len, value, value_len, revision_out,
                      err_out);
}

static inline ckv_status coordkv_go_update(uintptr_t store, const char *key, size_t key_len,
                                           const uint8_t *value, size_t value_len,
                                           uint64_t revision, uint64_t *revision_out,
                                           ckv_error **err_out) {
    return ckv_update(coordkv_go_store(store), key, key_len, value, value_len, revision,
                      revision_out, err_out);
}

static inline ckv_status coordkv_go_delete(uintptr_t store, const char *key, size_t key_len,
                                           uint64_t revision, uint64_t *revision_out,
                                           ckv_error **err_out) {
    return ckv_delete(coordkv_go_store(store), key, key_len, revision, revision_out, err_out);
}

static inline ckv_status coordkv_go_purge(uintptr_t store, const char *key, size_t key_len,
                                          uint64_t *revision_out, ckv_error **err_out) {
    return ckv_purge(coordkv_go_store(store), key, key_len, revision_out, err_out);
}

static inline ckv_status coordkv_go_delete_prefix(uintptr_t store, const char *prefix,
                                                  size_t prefix_len, uint64_t *count_out,
                                                  ckv_error **err_out) {
    return ckv_delete_prefix(coordkv_go_store(store), prefix, prefix_len, count_out, err_out);
}

static inline ckv_status coordkv_go_keys(uintptr_t store, const char *prefix,
                                         size_t prefix_len, ckv_key_list **keys_out,
                                         ckv_error **err_out) {
    return ckv_keys(coordkv_go_store(store), prefix, prefix_len, keys_out, err_out);
}

static inline ckv_status coordkv_go_list(uintptr_t store, const char *prefix,
                                         size_t prefix_len, ckv_entry_list **entries_out,
                                         ckv_error **err_out) {
    return ckv_list(coordkv_go_store(store), prefix, prefix_len, entries_out, err_out);
}

static inline ckv_status coordkv_go_history(uintptr_t store, const char *key, size_t key_len,
                                            ckv_entry_list **entries_out,
                                            ckv_error **err_out) {
    return ckv_history(coordkv_go_store(store), key, key_len, entries_out, err_out);
}

static inline ckv_status coordkv_go_last_revision(uintptr_t store, uint64_t *revision_out,
                                                  ckv_error **err_out) {
    return ckv_last_revision(coordkv_go_store(store), revision_out, err_out);
}

/* Defined in Go (trampoline.go, //export); must match the prototype cgo generates. */
extern ckv_status coordkvGoRmwTrampoline(uintptr_t call, ckv_entry *current,
                                         ckv_rmw_result *result);

static inline ckv_status coordkv_go_rmw_shim(void *user_data, const ckv_entry *current,
                                             ckv_rmw_result *result) {
    return coordkvGoRmwTrampoline((uintptr_t)user_data, (ckv_entry *)current, result);
}

static inline ckv_status coordkv_go_read_modify_write(uintptr_t store, const char *key,
                                                      size_t key_len, uintptr_t call,
                                                      uint64_t *revision_out,
                                                      ckv_error **err_out) {
    return ckv_read_modify_write(coordkv_go_store(store), key, key_len, coordkv_go_rmw_shim,
                                 (void *)call, revision_out, err_out);
}

/*
 * Watches: a ckv_watch* is a handle like a store's, kept by Go as an integer. A Go watch
 * is a ready watch (ckv_watch_ready): the library calls the exported Go function
 * (trampoline.go) with the watcher's cgo.Handle when events wait, and Go takes them with
 * ckv_watch_next without waiting.
 */
extern void coordkvGoWatchReady(uintptr_t watcher);

static inline void coordkv_go_ready_shim(void *user_data) {
    coordkvGoWatchReady((uintptr_t)user_data);
}

static inline ckv_status coordkv_go_watch(uintptr_t store, const char *key, size_t key_len,
                                          const ckv_watch_options *options, uintptr_t watcher,
                                          uintptr_t *watch_out, ckv_error **err_out) {
    ckv_watch *watch = NULL;
    ckv_status status = ckv_watch_ready(coordkv_go_store(store), key, key_len, options,
                                        coordkv_go_ready_shim, (void *)watcher, &watch,
                                        err_out);
    if (status == CKV_OK) {
        *watch_out = (uintptr_t)watch;
    }
    return status;
}

/* The next waiting event, or CKV_TIMEOUT at once when none waits. */
static inline ckv_status coordkv_go_watch_take(uintptr_t watch, ckv_event **event_out,
                                               ckv_error **err_out) {
    return ckv_watch_next((ckv_watch *)watch, 0, event_out, err_out);
}

static inline void coordkv_go_watch_close(uintptr_t watch) {
    ckv_watch_close((ckv_watch *)watch);
}

#endif /* COORDKV_GO_H */
