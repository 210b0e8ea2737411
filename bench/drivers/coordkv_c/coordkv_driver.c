/*
 * coordkv through its C API (include/coordkv.h, target/release/libcoordkv.so): the same
 * workloads as the nats.c peer, written the way a C user of coordkv would — one store
 * shared by every thread, blocking ckv_* calls. Against `mem://` it measures the embedded
 * backend; against `nats://` the same program runs on JetStream KV, so the two columns
 * differ only in the backend.
 *
 * A workload whose backend or API is missing from the library as built prints an
 * "unavailable" line (never a crash), so the harness can report the gap and move on.
 */
#include "../../common/bench.h"

#include <pthread.h>

#include "coordkv.h"

#define DRIVER "coordkv-c"

static bench_args A;
static ckv_store *STORE;

/* Reports a failed call and exits: a half-run benchmark has no number worth printing. */
static void check(ckv_status s, ckv_error *err, const char *what) {
    if (s == CKV_OK)
        return;
    bench_fail(DRIVER, &A, "%s: %s", what, err ? ckv_error_message(err) : ckv_status_name(s));
    ckv_error_free(err);
    exit(1);
}

static size_t key_of(char *out, size_t cap, const char *space, long i) {
    return (size_t)snprintf(out, cap, "/%s/k%08ld", space, i);
}

static void put_or_die(const char *key, size_t key_len, const char *val, uint64_t *rev,
                       const char *what) {
    ckv_error *err = NULL;
    ckv_status s = ckv_put(STORE, key, key_len, (const uint8_t *)val, (size_t)A.value_size, rev,
                           &err);
    check(s, err, what);
}

static void put(const char *key, size_t key_len, const char *val, uint64_t *rev) {
    put_or_die(key, key_len, val, rev, "put");
}

static const bench_client CLIENT = {DRIVER, &A, key_of, put};

static void put_op(bench_work *w, long i) {
    char key[64];
    put_or_die(key, key_of(key, sizeof key, "bench", i), w->val, NULL, "put");
}

static void get_op(bench_work *w, long i) {
    char key[64];
    size_t len = key_of(key, sizeof key, "bench", i % w->keyspace);
    ckv_entry *e = NULL;
    ckv_error *err = NULL;
    ckv_status s = ckv_get(STORE, key, len, &e, &err);
    check(s, err, "get");
    size_t vlen = 0;
    ckv_entry_value(e, &vlen);
    if (vlen != (size_t)A.value_size) {
        bench_fail(DRIVER, &A, "get returned %zu bytes", vlen);
        exit(1);
    }
    ckv_entry_free(e);
}

static void update_op(bench_work *w, long i) {
    (void)i;
    ckv_error *err = NULL;
    ckv_status s = ckv_update(STORE, w->key, w->key_len, (const uint8_t *)w->val,
                              (size_t)A.value_size, w->rev, &w->rev, &err);
    check(s, err, "update");
}

static int run_put(void) { return bench_run_put(&CLIENT, put_op); }
static int run_get(void) { return bench_run_get(&CLIENT, get_op); }
static int run_update(void) { return bench_run_update(&CLIENT, "/bench/counter", update_op); }
static int run_put_concurrent(void) { return bench_run_put_concurrent(&CLIENT); }

/* --- watches ------------------------------------------------------------------------ */

/*
 * Every watcher here is a callback watch: the library's few delivery threads call it,
 * so W watchers cost no thread each (unlike the nats.c peer, which pulls each watcher
 * from a thread of its own). All of them share one lock and one condition variable.
 */
static pthread_mutex_t WATCH_MU = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t WATCH_CV = PTHREAD_COND_INITIALIZER;
static long WATCHERS_DONE;

static void on_event(void *user_data, const ckv_event *event) {
    bench_watch_state *ws = user_data;
    ckv_event_type kind = ckv_event_kind(event);
    if (kind == CKV_EVENT_PROGRESS || kind == CKV_EVENT_SYNCED)
        return;
    uint64_t now = bench_now_ns();
    if (kind == CKV_EVENT_CANCELED)
        bench_watch_failed(ws);
    else
        bench_watch_event(ws, ckv_event_revision(event), now);
}

/* Options for a watch of /bench/ that waits for `want` events: a buffer that measures
 * delivery, not overflow. */
static ckv_watch_options watch_options(long want) {
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.buffer_size = (size_t)want + 1024;
    return opts;
}

static ckv_watch *watch_start(bench_watch_state *ws, long want) {
    bench_watch_init(ws, &WATCH_MU, &WATCH_CV, &WATCHERS_DONE, want);
    ckv_watch_options opts = watch_options(want);
    ckv_watch *watch = NULL;
    ckv_error *err = NULL;
    check(ckv_watch_callback(STORE, "/bench/", 7, &opts, on_event, ws, &watch, &err), err,
          "watch");
    return watch;
}

/* The poll form's reader: one thread blocked in ckv_watch_next, as a nats.c watcher is. */
typedef struct poll_reader {
    ckv_watch *watch;
    bench_watch_state *ws;
} poll_reader;

static void *poll_events(void *arg) {
    poll_reader *r = arg;
    ckv_event *event = NULL;
    while (ckv_watch_next(r->watch, -1, &event, NULL) == CKV_OK) {
        on_event(r->ws, event);
        ckv_event_free(event);
    }
    return NULL;
}

/*
 * The callback form (the result's rate and latencies), then the same loop with a polled
 * watch read by its own thread (poll_p50_us / poll_p99_us), so the two delivery forms are
 * compared under the same load.
 */
static int run_watch_latency(void) {
    long warm = bench_warmup_count(A.n);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    uint64_t *poll_lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    uint64_t elapsed = 0, poll_elapsed = 0;
    bench_watch_state ws;
    ckv_watch *watch = watch_start(&ws, warm + A.n);
    int failed = bench_time_watch(&CLIENT, &ws, warm, lat, &elapsed);
    ckv_watch_close(watch);
    if (failed)
        return 1;

    bench_watch_init(&ws, &WATCH_MU, &WATCH_CV, NULL, warm + A.n);
    ckv_watch_options opts = watch_options(warm + A.n);
    ckv_error *err = NULL;
    check(ckv_watch_open(STORE, "/bench/", 7, &opts, &watch, &err), err, "watch");
    poll_reader reader = {watch, &ws};
    pthread_t thread;
    pthread_create(&thread, NULL, poll_events, &reader);
    failed = bench_time_watch(&CLIENT, &ws, warm, poll_lat, &poll_elapsed);
    ckv_watch_close(watch); /* ends the reader's ckv_watch_next with CKV_CLOSED */
    pthread_join(thread, NULL);
    if (failed)
        return 1;

    qsort(poll_lat, (size_t)A.n, sizeof(uint64_t), bench_cmp_u64);
    char extra[160];
    snprintf(extra, sizeof extra, "\"poll_p50_us\": %.2f, \"poll_p99_us\": %.2f",
             bench_pct_us(poll_lat, A.n, 50), bench_pct_us(poll_lat, A.n, 99));
    bench_report(DRIVER, &A, A.n, elapsed, lat, A.n, extra);
    free(lat);
    free(poll_lat);
    return 0;
}

static bench_watch_state *FANOUT;
static ckv_watch **FANOUT_WATCHES;

static void fanout_watch(long i) { FANOUT_WATCHES[i] = watch_start(&FANOUT[i], A.n); }

static uint64_t fanout_last_event(uint64_t start) {
    pthread_mutex_lock(&WATCH_MU);
    int failed = 0;
    while (WATCHERS_DONE < A.watchers && !failed) {
        pthread_cond_wait(&WATCH_CV, &WATCH_MU);
        for (long i = 0; i < A.watchers && !failed; i++)
            failed = FANOUT[i].failed;
    }
    uint64_t last = start;
    for (long i = 0; i < A.watchers; i++)
        if (FANOUT[i].done_at > last)
            last = FANOUT[i].done_at;
    pthread_mutex_unlock(&WATCH_MU);
    return failed ? 0 : last;
}

static int run_watch_fanout(void) {
    FANOUT = calloc((size_t)A.watchers, sizeof(bench_watch_state));
    FANOUT_WATCHES = calloc((size_t)A.watchers, sizeof(ckv_watch *));
    int rc = bench_watch_fanout(&CLIENT, fanout_watch, fanout_last_event,
                                "\"server_consumers\": 1");
    for (long i = 0; i < A.watchers && rc == 0; i++)
        ckv_watch_close(FANOUT_WATCHES[i]);
    free(FANOUT_WATCHES);
    free(FANOUT);
    return rc;
}

/*
 * mem:// only: W polled watchers on distinct prefixes /w/<i>/, then N puts, each hitting
 * one of them. The registry finds a key's watchers by its path segments, so the time per
 * put (write + dispatch) should not grow with W. The puts cycle over the same keys
 * whatever W is (min(N, 100,000) of them, spread evenly over the watchers' prefixes, each
 * written once before the watchers register and the clock starts), so the store holds the
 * same data at every W and only the watchers differ.
 */
static int run_dispatch(void) {
    if (strncmp(A.url, "mem:", 4) != 0)
        return bench_unavailable(DRIVER, &A, "dispatch is measured on mem:// only");
    long distinct = A.n < 100000 ? A.n : 100000;
    enum { KEY_CAP = 48 };
    char *keys = malloc((size_t)distinct * KEY_CAP);
    size_t *key_lens = malloc(sizeof(size_t) * (size_t)distinct);
    char *val = bench_value(&A, 0);
    for (long k = 0; k < distinct; k++) {
        key_lens[k] = (size_t)snprintf(keys + k * KEY_CAP, KEY_CAP, "/w/%ld/k%ld",
                                       k % A.watchers, k / A.watchers);
        put_or_die(keys + k * KEY_CAP, key_lens[k], val, NULL, "first put");
    }
    ckv_watch **watches = calloc((size_t)A.watchers, sizeof(ckv_watch *));
    char target[64];
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.buffer_size = (size_t)(A.n / A.watchers) + 16;
    for (long i = 0; i < A.watchers; i++) {
        size_t len = (size_t)snprintf(target, sizeof target, "/w/%ld/", i);
        ckv_error *err = NULL;
        check(ckv_watch_open(STORE, target, len, &opts, &watches[i], &err), err, "watch");
    }
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        long k = i % distinct;
        put_or_die(keys + k * KEY_CAP, key_lens[k], val, NULL, "put");
    }
    uint64_t elapsed = bench_now_ns() - start;
    char extra[96];
    snprintf(extra, sizeof extra, "\"dispatch_ns_per_event\": %.1f", (double)elapsed / (double)A.n);
    bench_report(DRIVER, &A, A.n, elapsed, NULL, 0, extra);
    for (long i = 0; i < A.watchers; i++)
        ckv_watch_close(watches[i]);
    free(watches);
    free(keys);
    free(key_lens);
    free(val);
    return 0;
}

static const bench_workload WORKLOADS[] = {
    {"put", run_put}, {"get", run_get}, {"update", run_update},
    {"put_concurrent", run_put_concurrent}, {"watch_latency", run_watch_latency},
    {"watch_fanout", run_watch_fanout}, {"dispatch", run_dispatch}, {NULL, NULL},
};

static int open_store(void) {
    ckv_error *err = NULL;
    ckv_status s;
    if (strncmp(A.url, "nats://", 7) == 0) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"url\": \"%s\", \"bucket\": \"%s\", \"history\": 16, \"storage\": \"file\"}",
                 A.url, A.bucket);
        s = ckv_open_config(json, &STORE, &err);
    } else {
        s = ckv_open(A.url, &STORE, &err);
    }
    if (s == CKV_UNSUPPORTED) {
        bench_unavailable(DRIVER, &A, "%s", ckv_error_message(err));
        ckv_error_free(err);
        return 1;
    }
    check(s, err, "open");
    return 0;
}

int main(int argc, char **argv) {
    A = bench_parse(argc, argv);
    const bench_workload *workload = bench_find(WORKLOADS, &A);
    if (workload == NULL)
        return bench_unavailable(DRIVER, &A, "no %s workload for coordkv", A.workload);
    if (open_store() != 0)
        return 0;
    int rc = workload->run();
    ckv_close(STORE);
    return rc;
}
