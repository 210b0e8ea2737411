/*
 * The watch C API as a C user sees it: polling (events, TIMEOUT, CANCELED then CLOSED),
 * snapshot + SYNCED, prev values, callbacks on library threads, closing a watch from
 * inside its own callback, closing from another thread while callbacks run, and closing
 * the store. Built with -Wall -Wextra -Werror -pedantic and run under valgrind.
 */
/* Runs on mem:// and on NATS: events reach a NATS watch asynchronously, so the checks
 * wait for them with a timeout instead of expecting them at once. */
#define _POSIX_C_SOURCE 200809L
#include "ckv_test.h"

#include <pthread.h>
#include <time.h>

#define OK(call) CHECK((call) == CKV_OK)

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static uint64_t put(ckv_store *store, const char *key, const char *value) {
    uint64_t rev = 0;
    OK(ckv_put(store, key, strlen(key), (const uint8_t *)value, strlen(value), &rev, NULL));
    return rev;
}

static ckv_event *next(ckv_watch *watch, int64_t timeout_ms, ckv_status *status) {
    ckv_event *event = NULL;
    ckv_error *err = NULL;
    *status = ckv_watch_next(watch, timeout_ms, &event, &err);
    ckv_error_free(err);
    return event;
}

/* The default watch options, for a prefix. */
static ckv_watch_options prefix_options(void) {
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    return opts;
}

static ckv_watch *open_watch(ckv_store *store, const char *target,
                             const ckv_watch_options *opts) {
    ckv_watch *watch = NULL;
    OK(ckv_watch_open(store, target, strlen(target), opts, &watch, NULL));
    return watch;
}

/* The next event, within timeout_ms, which must be a `kind` at `revision`; the caller
 * frees it. */
static ckv_event *next_is(ckv_watch *watch, int64_t timeout_ms, ckv_event_type kind,
                          uint64_t revision) {
    ckv_status st;
    ckv_event *e = next(watch, timeout_ms, &st);
    if (!CHECK(st == CKV_OK && ckv_event_kind(e) == kind && ckv_event_revision(e) == revision)) {
        fprintf(stderr, "    got %s, a %s at %llu; want a %s at %llu\n", ckv_status_name(st),
                ckv_event_kind_name(ckv_event_kind(e)), (unsigned long long)ckv_event_revision(e),
                ckv_event_kind_name(kind), (unsigned long long)revision);
    }
    return e;
}

static void test_poll(void) {
    ckv_store *store = test_open_store("");
    uint64_t r1 = put(store, "/cfg/a", "1");

    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    CHECK(opts.buffer_size > 0 && !opts.prefix && opts.progress_interval_ms == 0);
    CHECK(!opts.snapshot && !opts.prev_value && !opts.resync);
    opts.prefix = true;
    opts.snapshot = true;
    opts.prev_value = true;
    ckv_watch *watch = open_watch(store, "/cfg/", &opts);

    ckv_event *e = next_is(watch, 1000, CKV_EVENT_PUT, r1);
    size_t len = 0;
    const char *key = ckv_entry_key(ckv_event_entry(e), &len);
    CHECK(len == 6 && strcmp(key, "/cfg/a") == 0);
    ckv_event_free(e);
    e = next_is(watch, 1000, CKV_EVENT_SYNCED, r1);
    CHECK(ckv_event_entry(e) == NULL);
    ckv_event_free(e);

    ckv_status st;
    e = next(watch, 0, &st);
    CHECK(st == CKV_TIMEOUT && e == NULL);

    uint64_t r2 = put(store, "/cfg/a", "2");
    e = next_is(watch, -1, CKV_EVENT_PUT, r2);
    const ckv_entry *prev = ckv_event_prev_entry(e);
    size_t vlen = 0;
    const uint8_t *v = prev ? ckv_entry_value(prev, &vlen) : NULL;
    CHECK(prev != NULL && vlen == 1 && v[0] == '1');
    ckv_event_free(e);

    /* Closing the store: CANCELED(store closed), then CLOSED. */
    ckv_close(store);
    e = next_is(watch, 1000, CKV_EVENT_CANCELED, r2);
    CHECK(ckv_event_cancel_reason(e) == CKV_CANCEL_STORE_CLOSED);
    CHECK(strlen(ckv_event_message(e)) > 0);
    ckv_event_free(e);
    e = next(watch, 1000, &st);
    CHECK(st == CKV_CLOSED && e == NULL);
    ckv_watch_close(watch);
    /* A closed handle is refused, never dereferenced. */
    e = next(watch, 0, &st);
    CHECK(st == CKV_CLOSED);
    ckv_watch_close(watch);
    ckv_watch_close(NULL);
}

/* A `resync` watch whose replay start is no longer retained gets the scope's values and
 * SYNCED, each marked ckv_event_is_resync, instead of CANCELED(history lost). */
static void test_resync_instead_of_history_lost(void) {
    ckv_store *store = test_open_store(",\"history\": 2");
    uint64_t r1 = put(store, "/h/a", "1");
    put(store, "/h/a", "2");
    uint64_t r3 = put(store, "/h/a", "3");
    ckv_watch_options opts = prefix_options();
    opts.start_revision = r1;
    opts.resync = true;
    ckv_watch *watch = open_watch(store, "/h/", &opts);
    ckv_event *e = next_is(watch, 10000, CKV_EVENT_PUT, r3);
    CHECK(ckv_event_is_resync(e));
    ckv_event_free(e);
    e = next_is(watch, 10000, CKV_EVENT_SYNCED, r3);
    CHECK(ckv_event_is_resync(e));
    ckv_event_free(e);
    uint64_t r4 = put(store, "/h/a", "4");
    e = next_is(watch, 10000, CKV_EVENT_PUT, r4);
    CHECK(!ckv_event_is_resync(e));
    ckv_event_free(e);
    CHECK(!ckv_event_is_resync(NULL));
    ckv_watch_close(watch);
    ckv_close(store);
}

/* A ready watch: ready() only signals; the owner drains with ckv_watch_next(0) until
 * CKV_TIMEOUT. Every event of a burst arrives, in order, with no lost wake-up. */
struct ready_signal {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pending;
    int calls;
};

static void on_ready(void *user_data) {
    struct ready_signal *r = user_data;
    pthread_mutex_lock(&r->lock);
    r->pending = 1;
    r->calls++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static int wait_ready(struct ready_signal *r) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&r->lock);
    while (!r->pending) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0) break;
    }
    int got = r->pending;
    r->pending = 0;
    pthread_mutex_unlock(&r->lock);
    return got;
}

static void test_ready_watch_drains_every_event(void) {
    ckv_store *store = test_open_store("");
    struct ready_signal r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.buffer_size = 1024;
    /* One key per write: a consumer slowed down by a loaded machine then never finds a
     * revision already trimmed by the per-key history (HISTORY_LOST, rightly, but not
     * what this test is about). */
    opts.prefix = true;
    ckv_watch *watch = NULL;
    OK(ckv_watch_ready(store, "/ready/", 7, &opts, on_ready, &r, &watch, NULL));
    CHECK(ckv_watch_ready(store, "/ready/", 7, &opts, NULL, &r, &watch, NULL) ==
          CKV_INVALID_ARGUMENT);
    enum { N = 200 };
    uint64_t revs[N];
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "/ready/k%d", i);
        revs[i] = put(store, key, "v");
    }
    int got = 0, in_order = 1;
    while (got < N && wait_ready(&r)) {
        ckv_status st;
        ckv_event *e;
        while ((e = next(watch, 0, &st)) != NULL) {
            if (got < N && ckv_event_revision(e) != revs[got]) in_order = 0;
            got++;
            ckv_event_free(e);
        }
        CHECK(st == CKV_TIMEOUT);
    }
    CHECK(got == N && in_order);
    ckv_watch_close(watch);
    int calls = r.calls;
    put(store, "/ready/k", "after close");
    sleep_ms(50);
    CHECK(r.calls == calls); /* nothing is called after close returns */
    ckv_close(store);
}

static void test_bad_arguments(void) {
    ckv_store *store = test_open_store("");
    ckv_watch *watch = NULL;
    ckv_error *err = NULL;
    /* An exact watch needs a key, not a prefix. */
    CHECK(ckv_watch_open(store, "/dir/", 5, NULL, &watch, &err) == CKV_INVALID_ARGUMENT);
    CHECK(watch == NULL && err != NULL && strlen(ckv_error_message(err)) > 0);
    ckv_error_free(err);
    CHECK(ckv_watch_open(store, "/k", 2, NULL, NULL, NULL) == CKV_INVALID_ARGUMENT);
    CHECK(ckv_watch_callback(store, "/k", 2, NULL, NULL, NULL, &watch, NULL) ==
          CKV_INVALID_ARGUMENT);
    ckv_close(store);
}

/* ---- callbacks ---- */

struct counter {
    pthread_mutex_t lock;
    int calls;
    int canceled;
    uint64_t last_revision;
    int out_of_order;
    ckv_watch *self; /* closed from inside the callback after `close_after` calls */
    int close_after;
    int in_callback;
    long sleep_ms;
};

static void counter_init(struct counter *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

static void on_event(void *user_data, const ckv_event *event) {
    struct counter *c = user_data;
    ckv_watch *to_close = NULL;
    pthread_mutex_lock(&c->lock);
    c->in_callback = 1;
    c->calls++;
    if (ckv_event_kind(event) == CKV_EVENT_CANCELED) {
        c->canceled++;
    } else {
        if (ckv_event_revision(event) <= c->last_revision) c->out_of_order++;
        c->last_revision = ckv_event_revision(event);
    }
    if (c->close_after > 0 && c->calls == c->close_after) to_close = c->self;
    long nap = c->sleep_ms;
    pthread_mutex_unlock(&c->lock);
    if (to_close) ckv_watch_close(to_close);
    if (nap) sleep_ms(nap);
    pthread_mutex_lock(&c->lock);
    c->in_callback = 0;
    pthread_mutex_unlock(&c->lock);
}

static int calls_of(struct counter *c) {
    pthread_mutex_lock(&c->lock);
    int n = c->calls;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static int wait_calls(struct counter *c, int want) {
    for (int i = 0; i < 10000; i++) {
        if (calls_of(c) >= want) return 1;
        sleep_ms(1);
    }
    return 0;
}

static void test_callback_order_and_self_close(void) {
    ckv_store *store = test_open_store("");
    ckv_watch_options opts = prefix_options();

    struct counter all;
    counter_init(&all);
    ckv_watch *w_all = NULL;
    OK(ckv_watch_callback(store, "/cb/", 4, &opts, on_event, &all, &w_all, NULL));

    struct counter self;
    counter_init(&self);
    self.close_after = 3;
    ckv_watch *w_self = NULL;
    pthread_mutex_lock(&self.lock);
    OK(ckv_watch_callback(store, "/cb/", 4, &opts, on_event, &self, &w_self, NULL));
    self.self = w_self;
    pthread_mutex_unlock(&self.lock);

    {
        /* A callback watch is not polled. */
        ckv_status st;
        ckv_event *e = next(w_all, 0, &st);
        CHECK(st == CKV_INVALID_ARGUMENT && e == NULL);
    }
    for (int i = 0; i < 100; i++) put(store, "/cb/k", "v");
    CHECK(wait_calls(&all, 100));
    CHECK(calls_of(&all) == 100);
    CHECK(all.out_of_order == 0);
    CHECK(calls_of(&self) == 3); /* the closing call was the last */
    put(store, "/cb/k", "after");
    CHECK(wait_calls(&all, 101));
    CHECK(calls_of(&self) == 3);
    ckv_watch_close(w_self); /* already closed from inside: a no-op */

    /* Closing the store ends the remaining watch with CANCELED before ckv_close returns. */
    ckv_close(store);
    CHECK(all.canceled == 1);
    CHECK(calls_of(&all) == 102);
    ckv_watch_close(w_all);
    pthread_mutex_destroy(&all.lock);
    pthread_mutex_destroy(&self.lock);
}

struct writer_args {
    ckv_store *store;
    int stop;
    pthread_mutex_t lock;
};

static void *writer(void *p) {
    struct writer_args *a = p;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        int stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop) break;
        put(a->store, "/busy/k", "v");
        sleep_ms(1);
    }
    return NULL;
}

static void test_close_from_another_thread_while_callbacks_run(void) {
    ckv_store *store = test_open_store("");
    ckv_watch_options opts = prefix_options();

    struct writer_args args;
    args.store = store;
    args.stop = 0;
    pthread_mutex_init(&args.lock, NULL);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, writer, &args) == 0);

    for (int round = 0; round < 20; round++) {
        /* user_data on the heap, freed right after close: valgrind sees any late call. */
        struct counter *c = malloc(sizeof *c);
        counter_init(c);
        c->sleep_ms = 2;
        ckv_watch *w = NULL;
        OK(ckv_watch_callback(store, "/busy/", 6, &opts, on_event, c, &w, NULL));
        CHECK(wait_calls(c, 2));
        ckv_watch_close(w);
        pthread_mutex_lock(&c->lock);
        CHECK(c->in_callback == 0);
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    pthread_mutex_lock(&args.lock);
    args.stop = 1;
    pthread_mutex_unlock(&args.lock);
    pthread_join(thread, NULL);
    pthread_mutex_destroy(&args.lock);
    ckv_close(store);
}

static void test_poll_close_wakes_waiter_thread(void);

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_poll);
    RUN(test_bad_arguments);
    RUN(test_resync_instead_of_history_lost);
    RUN(test_ready_watch_drains_every_event);
    RUN(test_callback_order_and_self_close);
    RUN(test_close_from_another_thread_while_callbacks_run);
    RUN(test_poll_close_wakes_waiter_thread);
    return test_finish();
}

static void *blocked_next(void *p) {
    ckv_status st;
    ckv_event *e = next((ckv_watch *)p, -1, &st);
    ckv_event_free(e);
    return (void *)(intptr_t)st;
}

static void test_poll_close_wakes_waiter_thread(void) {
    ckv_store *store = test_open_store("");
    ckv_watch *w = NULL;
    OK(ckv_watch_open(store, "/w", 2, NULL, &w, NULL));
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, blocked_next, w) == 0);
    sleep_ms(20);
    ckv_watch_close(w);
    void *result = NULL;
    pthread_join(thread, &result);
    CHECK((intptr_t)result == CKV_CLOSED);
    ckv_close(store);
}
