/*
 * membership.c — nodes register under /nodes/<id> with a lease; a watcher prints who
 * joins (PUT), who leaves cleanly (DELETE: the node revoked its lease) and who dies
 * (EXPIRED: nobody renewed the lease for its TTL).
 *
 *   membership [url]     (default mem://; e.g. nats://127.0.0.1:4222)
 *
 * On mem:// every node lives in this process, so node 2's death is played by
 * ckv_lease_abandon, which stops the library's keepalive exactly as a crash would. On NATS
 * run a node in another process and kill -9 it: the watcher prints the same line.
 */
#include "coordkv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int report(ckv_status status, ckv_error *err, const char *what) {
    if (status == CKV_OK) return 0;
    fprintf(stderr, "%s: %s\n", what, err ? ckv_error_message(err) : ckv_status_name(status));
    ckv_error_free(err);
    return 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double started;

static void on_event(void *user_data, const ckv_event *event) {
    (void)user_data;
    const ckv_entry *entry = ckv_event_entry(event);
    if (entry == NULL) return;
    size_t len = 0;
    const char *key = ckv_entry_key(entry, &len);
    const char *what = "?";
    switch (ckv_event_kind(event)) {
    case CKV_EVENT_PUT: what = "joined"; break;
    case CKV_EVENT_DELETE: what = "left"; break;
    case CKV_EVENT_EXPIRED: what = "DIED (its lease expired)"; break;
    default: return;
    }
    printf("[%5.2fs] %.*s %s (revision %llu)\n", now_s() - started, (int)len, key, what,
           (unsigned long long)ckv_event_revision(event));
    fflush(stdout);
}

static ckv_lease *join(ckv_store *store, const char *key, uint64_t ttl_ms) {
    ckv_error *err = NULL;
    ckv_lease *lease = NULL;
    if (report(ckv_lease_grant(store, ttl_ms, NULL, &lease, &err), err, "grant")) return NULL;
    ckv_write_options options;
    ckv_write_options_init(&options);
    options.lease = ckv_lease_id(lease);
    const char *address = "10.0.0.1:7000";
    ckv_status status = ckv_put_with(store, key, strlen(key), (const uint8_t *)address,
                                     strlen(address), &options, NULL, &err);
    report(status, err, "register");
    return lease;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "mem://";
    char config[512];
    /* A 1 s marker TTL lets NATS grant the 2 s leases as asked (see the README). */
    snprintf(config, sizeof config, "{\"url\":\"%s\",\"bucket\":\"membership\",\"marker_ttl_ms\":1000}", url);
    ckv_store *store = NULL;
    ckv_error *err = NULL;
    if (report(ckv_open_config(config, &store, &err), err, "open")) return 1;
    started = now_s();

    ckv_watch_options options;
    ckv_watch_options_init(&options);
    options.prefix = true;
    ckv_watch *watch = NULL;
    if (report(ckv_watch_callback(store, "/nodes/", 7, &options, on_event, NULL, &watch, &err),
               err, "watch")) {
        return 1;
    }
    ckv_lease *one = join(store, "/nodes/n-1", 2000);
    ckv_lease *two = join(store, "/nodes/n-2", 2000);
    if (one == NULL || two == NULL) return 1;
    printf("two nodes with 2 s leases; the library renews them (quietly) every ~0.7 s\n");

    struct timespec pause = {3, 0};
    nanosleep(&pause, NULL);
    printf("n-1 shuts down cleanly (revokes its lease); n-2 crashes (its keepalive stops)\n");
    report(ckv_lease_revoke(store, ckv_lease_id(one), &err), err, "revoke");
    report(ckv_lease_abandon(store, ckv_lease_id(two), &err), err, "abandon");
    nanosleep(&pause, NULL);

    ckv_lease_free(one);
    ckv_lease_free(two);
    ckv_watch_close(watch);
    ckv_close(store);
    return 0;
}
