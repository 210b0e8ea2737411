/*
 * Leases from C, as a membership registry uses them: keys attached with ckv_put_with,
 * DELETE on revoke, EXPIRED when the holder stops (ckv_lease_abandon: what a crash does),
 * the lost callback called exactly once (also by ckv_close), write options, quiet writes,
 * and the argument edges. Runs on mem:// and on NATS (with a 1 s marker TTL, so that 1-2 s
 * leases are granted as asked), under valgrind and ASan.
 */
#define _POSIX_C_SOURCE 200809L
#include "ckv_test.h"
#include "lease_test.h"

#include <pthread.h>
#include <time.h>

/* ckv-test-valgrind-args: slow
 * Under valgrind everything runs many times slower, the keepalive thread too: leases get
 * longer TTLs there, so that they are renewed in time. */
static int slow;

static uint64_t ttl_ms(void) { return slow ? 4000 : test_on_mem() ? 300 : 2000; }

static ckv_store *open_lease_store(void) { return test_open_store(",\"marker_ttl_ms\":1000"); }

static ckv_watch *watch_prefix(ckv_store *store, const char *prefix, int quiet_writes) {
    ckv_error *err = NULL;
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.quiet_writes = quiet_writes;
    ckv_watch *watch = NULL;
    CHECK_OK(ckv_watch_open(store, KEY(prefix), &opts, &watch, &err));
    return watch;
}

/* Takes `count` data events of `kind`; returns how many came, in increasing revisions. */
static int take(ckv_watch *watch, ckv_event_type kind, int count) {
    uint64_t last = 0;
    int got = 0;
    for (int i = 0; i < count; i++) {
        ckv_event *event = NULL;
        ckv_error *err = NULL;
        if (ckv_watch_next(watch, 30000, &event, &err) != CKV_OK) {
            ckv_error_free(err);
            break;
        }
        int ok = ckv_event_kind(event) == kind && ckv_event_revision(event) > last;
        last = ckv_event_revision(event);
        ckv_event_free(event);
        if (!ok) break;
        got++;
    }
    return got;
}

static void test_revoke_deletes_and_tells_the_holder(void) {
    ckv_store *store = open_lease_store();
    ckv_error *err = NULL;
    struct lost_log log = LOST_LOG_INIT;
    ckv_lease_options lo;
    ckv_lease_options_init(&lo);
    lo.lost = on_lost;
    lo.user_data = &log;
    ckv_lease *lease = NULL;
    CHECK_OK(ckv_lease_grant(store, ttl_ms(), &lo, &lease, &err));
    uint64_t id = ckv_lease_id(lease);
    CHECK(id > 0 && ckv_lease_ttl_ms(lease) >= ttl_ms());
    ckv_watch *watch = watch_prefix(store, "/nodes/", 0);
    char key[32];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "/nodes/n-%d", i);
        put_leased(store, key, id);
    }
    CHECK(take(watch, CKV_EVENT_PUT, 5) == 5);

    uint64_t granted = 0, remaining = 0;
    ckv_key_list *keys = NULL;
    CHECK_OK(ckv_lease_time_to_live(store, id, &granted, &remaining, &keys, &err));
    CHECK(granted == ckv_lease_ttl_ms(lease) && remaining <= granted);
    CHECK(keys != NULL && ckv_key_list_len(keys) == 5 && key_at_is(keys, 0, "/nodes/n-0"));
    ckv_key_list_free(keys);
    uint64_t *ids = NULL;
    size_t count = 0;
    CHECK_OK(ckv_lease_list(store, &ids, &count, &err));
    CHECK(count == 1 && ids != NULL && ids[0] == id);
    ckv_lease_ids_free(ids, count);
    CHECK(!ckv_lease_is_lost(lease) && ckv_lease_lost_reason(lease) == NULL);
    CHECK(ckv_lease_wait_lost(lease, 10) == CKV_TIMEOUT);

    CHECK_OK(ckv_lease_revoke(store, id, &err));
    CHECK(take(watch, CKV_EVENT_DELETE, 5) == 5);
    CHECK(ckv_lease_is_lost(lease) && ckv_lease_wait_lost(lease, 0) == CKV_OK);
    CHECK(ckv_lease_lost_reason(lease) != NULL && strstr(ckv_lease_lost_reason(lease), "revoked"));
    pthread_mutex_lock(&log.lock);
    CHECK(log.calls == 1 && log.id == id && strstr(log.reason, "revoked") != NULL);
    pthread_mutex_unlock(&log.lock);

    ckv_write_options w;
    ckv_write_options_init(&w);
    w.lease = id;
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_put_with(store, KEY("/nodes/late"), VAL("x"), &w, NULL, &err));
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_lease_revoke(store, id, &err));
    CHECK_OK(ckv_lease_list(store, &ids, &count, &err));
    CHECK(count == 0 && ids == NULL);
    ckv_lease_free(lease);
    ckv_watch_close(watch);
    ckv_close(store);
    pthread_mutex_lock(&log.lock);
    CHECK(log.calls == 1); /* exactly once, also across the close */
    pthread_mutex_unlock(&log.lock);
}

static void test_an_abandoned_lease_expires_its_keys(void) {
    ckv_store *store = open_lease_store();
    ckv_error *err = NULL;
    ckv_lease *lease = NULL;
    CHECK_OK(ckv_lease_grant(store, ttl_ms(), NULL, &lease, &err));
    uint64_t id = ckv_lease_id(lease);
    ckv_watch *watch = watch_prefix(store, "/members/", 0);
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "/members/m-%02d", i);
        put_leased(store, key, id);
    }
    CHECK(take(watch, CKV_EVENT_PUT, 20) == 20);
    CHECK_OK(ckv_lease_abandon(store, id, &err));
    CHECK(ckv_lease_is_lost(lease));
    CHECK(take(watch, CKV_EVENT_EXPIRED, 20) == 20);
    ckv_entry *entry = NULL;
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/members/m-00"), &entry, &err));
    ckv_lease_free(lease);
    ckv_watch_close(watch);
    ckv_close(store);
}

static void test_ttl_keys_quiet_writes_and_options(void) {
    ckv_store *store = open_lease_store();
    ckv_error *err = NULL;
    ckv_watch *loud = watch_prefix(store, "/t/", 0);
    ckv_watch *quiet = watch_prefix(store, "/t/", 1);
    ckv_write_options w;
    ckv_write_options_init(&w);
    CHECK(w.lease == 0 && w.ttl_ms == 0 && !w.quiet);
    w.quiet = true;
    uint64_t rev = 0;
    CHECK_OK(ckv_put_with(store, KEY("/t/hush"), VAL("q"), &w, &rev, &err));
    ckv_entry *entry = NULL;
    CHECK_OK(ckv_get(store, KEY("/t/hush"), &entry, &err));
    CHECK(ckv_entry_is_quiet(entry) && ckv_entry_lease(entry) == 0 && ckv_entry_revision(entry) == rev);
    ckv_entry_free(entry);
    ckv_write_options_init(&w);
    w.ttl_ms = ttl_ms();
    CHECK_OK(ckv_create_with(store, KEY("/t/ttl"), VAL("t"), &w, &rev, &err));
    CHECK_OK(ckv_update_with(store, KEY("/t/ttl"), VAL("t2"), rev, &w, &rev, &err));
    /* The loud watcher: PUT, PUT, EXPIRED on /t/ttl, never the quiet write. */
    CHECK(take(loud, CKV_EVENT_PUT, 2) == 2);
    CHECK(take(loud, CKV_EVENT_EXPIRED, 1) == 1);
    /* The quiet one sees the quiet write first. */
    CHECK(take(quiet, CKV_EVENT_PUT, 3) == 3);
    w.lease = 12345;
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put_with(store, KEY("/t/both"), VAL("x"), &w, NULL, &err));
    ckv_write_options_init(&w);
    w.lease = 12345;
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_put_with(store, KEY("/t/none"), VAL("x"), &w, NULL, &err));
    /* NULL options are a plain write. */
    CHECK_OK(ckv_put_with(store, KEY("/t/plain"), VAL("p"), NULL, &rev, &err));
    ckv_watch_close(loud);
    ckv_watch_close(quiet);
    ckv_close(store);
}

static void test_argument_edges(void) {
    ckv_store *store = open_lease_store();
    ckv_error *err = NULL;
    ckv_lease *lease = NULL;
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_lease_grant(store, 0, NULL, &lease, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_lease_grant(store, 1000, NULL, NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_lease_grant(NULL, 1000, NULL, &lease, &err));
    CHECK(lease == NULL);
    CHECK(ckv_lease_id(NULL) == 0 && ckv_lease_ttl_ms(NULL) == 0 && ckv_lease_is_lost(NULL));
    CHECK(ckv_lease_lost_reason(NULL) == NULL);
    CHECK(ckv_lease_wait_lost(NULL, 0) == CKV_INVALID_ARGUMENT);
    ckv_lease_free(NULL);
    ckv_lease_ids_free(NULL, 0);
    ckv_lease_options_init(NULL);
    ckv_write_options_init(NULL);
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_lease_keep_alive(store, 999, NULL, &err));
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_lease_time_to_live(store, 999, NULL, NULL, NULL, &err));
    CHECK_FAILS(CKV_LEASE_NOT_FOUND, ckv_lease_abandon(store, 999, &err));
    uint64_t *ids = NULL;
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_lease_list(store, &ids, NULL, &err));
    /* A lease kept past its store's close is not revoked by it. */
    ckv_lease_options lo;
    ckv_lease_options_init(&lo);
    lo.keep_on_close = true;
    CHECK_OK(ckv_lease_grant(store, ttl_ms(), &lo, &lease, &err));
    uint64_t remaining = 0;
    CHECK_OK(ckv_lease_keep_alive(store, ckv_lease_id(lease), &remaining, &err));
    CHECK(remaining > 0);
    ckv_close(store);
    CHECK(ckv_lease_is_lost(lease)); /* its holder is gone: nobody keeps it alive */
    ckv_lease_free(lease);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    slow = argc > 3 && strcmp(argv[3], "slow") == 0;
    RUN(test_revoke_deletes_and_tells_the_holder);
    RUN(test_an_abandoned_lease_expires_its_keys);
    RUN(test_ttl_keys_quiet_writes_and_options);
    RUN(test_argument_edges);
    return test_finish();
}
