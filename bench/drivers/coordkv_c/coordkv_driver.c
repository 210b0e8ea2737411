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

static void warmup(const char *val) {
    char key[64];
    long w = bench_warmup_count(A.n);
    for (long i = 0; i < w; i++)
        put_or_die(key, key_of(key, sizeof key, "warm", i % 16), val, NULL, "warm-up put");
}

/*
 * Runs op(0..n-1) and reports it. Over the network a clock read is noise next to a round
 * trip, so one pass gives both rates and latencies. In memory a clock read is a visible
 * share of an operation, so mem:// gets a first pass with no per-op clock (the rate) and
 * a second pass for the latencies.
 */
static void measure(void (*op)(long), long n) {
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)n);
    uint64_t elapsed = 0;
    int in_memory = strncmp(A.url, "mem:", 4) == 0;
    if (in_memory) {
        uint64_t start = bench_now_ns();
        for (long i = 0; i < n; i++)
            op(i);
        elapsed = bench_now_ns() - start;
    }
    uint64_t start = bench_now_ns();
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        op(i);
        lat[i] = bench_now_ns() - t0;
    }
    if (!in_memory)
        elapsed = bench_now_ns() - start;
    bench_report(DRIVER, &A, n, elapsed, lat, n, in_memory ? "\"rate_pass\": \"untimed\"" : "");
    free(lat);
}

static char *VALUE;
static long KEYSPACE;

static void put_op(long i) {
    char key[64];
    put_or_die(key, key_of(key, sizeof key, "bench", i), VALUE, NULL, "put");
}

static int run_put(void) {
    VALUE = malloc((size_t)A.value_size);
    bench_fill_value(VALUE, A.value_size, 0);
    warmup(VALUE);
    measure(put_op, A.n);
    return 0;
}

static void get_or_die(const char *key, size_t len, const char *what) {
    ckv_entry *e = NULL;
    ckv_error *err = NULL;
    ckv_status s = ckv_get(STORE, key, len, &e, &err);
    check(s, err, what);
    size_t vlen = 0;
    ckv_entry_value(e, &vlen);
    if (vlen != (size_t)A.value_size) {
        bench_fail(DRIVER, &A, "get returned %zu bytes", vlen);
        exit(1);
    }
    ckv_entry_free(e);
}

static void get_op(long i) {
    char key[64];
    get_or_die(key, key_of(key, sizeof key, "bench", i % KEYSPACE), "get");
}

static int run_get(void) {
    char key[64];
    VALUE = malloc((size_t)A.value_size);
    KEYSPACE = A.n < 1000 ? A.n : 1000;
    bench_fill_value(VALUE, A.value_size, 0);
    for (long i = 0; i < KEYSPACE; i++)
        put_or_die(key, key_of(key, sizeof key, "bench", i), VALUE, NULL, "seed put");
    long w = bench_warmup_count(A.n);
    for (long i = 0; i < w; i++)
        get_op(i);
    measure(get_op, A.n);
    return 0;
}

static const char COUNTER_KEY[] = "/bench/counter";
static uint64_t COUNTER_REV;

static void update_op(long i) {
    (void)i;
    ckv_error *err = NULL;
    ckv_status s = ckv_update(STORE, COUNTER_KEY, sizeof COUNTER_KEY - 1, (const uint8_t *)VALUE,
                              (size_t)A.value_size, COUNTER_REV, &COUNTER_REV, &err);
    check(s, err, "update");
}

static int run_update(void) {
    VALUE = malloc((size_t)A.value_size);
    bench_fill_value(VALUE, A.value_size, 0);
    warmup(VALUE);
    put_or_die(COUNTER_KEY, sizeof COUNTER_KEY - 1, VALUE, &COUNTER_REV, "seed put");
    measure(update_op, A.n);
    return 0;
}

typedef struct worker {
    long id, from, count;
    uint64_t *lat;
    pthread_barrier_t *go;
} worker;

static void *put_worker(void *arg) {
    worker *w = arg;
    char *val = malloc((size_t)A.value_size);
    char key[64];
    bench_fill_value(val, A.value_size, (uint64_t)w->id);
    pthread_barrier_wait(w->go);
    for (long i = 0; i < w->count; i++) {
        size_t len = key_of(key, sizeof key, "bench", w->from + i);
        uint64_t t0 = bench_now_ns();
        put_or_die(key, len, val, NULL, "concurrent put");
        w->lat[w->from + i] = bench_now_ns() - t0;
    }
    free(val);
    return NULL;
}

static int run_put_concurrent(void) {
    long t = A.threads;
    char *val = malloc((size_t)A.value_size);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    pthread_t *tids = calloc((size_t)t, sizeof(pthread_t));
    worker *ws = calloc((size_t)t, sizeof(worker));
    pthread_barrier_t go;
    bench_fill_value(val, A.value_size, 0);
    warmup(val);
    pthread_barrier_init(&go, NULL, (unsigned)(t + 1));
    for (long i = 0; i < t; i++) {
        ws[i] = (worker){i, A.n * i / t, A.n * (i + 1) / t - A.n * i / t, lat, &go};
        pthread_create(&tids[i], NULL, put_worker, &ws[i]);
    }
    pthread_barrier_wait(&go);
    uint64_t start = bench_now_ns();
    for (long i = 0; i < t; i++)
        pthread_join(tids[i], NULL);
    bench_report(DRIVER, &A, A.n, bench_now_ns() - start, lat, A.n, "");
    return 0;
}

/* --- watches ------------------------------------------------------------------------ */

/*
 * Every watcher here is a callback watch: the library's few delivery threads call it,
 * so W watchers cost no thread each (unlike the nats.c peer, which pulls each watcher
 * from a thread of its own). A watcher counts data events and notes when the last one
 * it waits for arrived.
 */
typedef struct watch_state {
    long want;
    long got;
    uint64_t seen_rev;
    uint64_t seen_at;
    uint64_t done_at;
    int failed;
} watch_state;

static pthread_mutex_t WATCH_MU = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t WATCH_CV = PTHREAD_COND_INITIALIZER;
static long WATCHERS_DONE;

static void on_event(void *user_data, const ckv_event *event) {
    watch_state *ws = user_data;
    ckv_event_type kind = ckv_event_kind(event);
    if (kind == CKV_EVENT_PROGRESS || kind == CKV_EVENT_SYNCED)
        return;
    uint64_t now = bench_now_ns();
    pthread_mutex_lock(&WATCH_MU);
    if (kind == CKV_EVENT_CANCELED) {
        ws->failed = 1;
    } else if (ws->got < ws->want) {
        ws->got++;
        ws->seen_rev = ckv_event_revision(event);
        ws->seen_at = now;
        if (ws->got == ws->want) {
            ws->done_at = now;
            WATCHERS_DONE++;
        }
    }
    pthread_cond_broadcast(&WATCH_CV);
    pthread_mutex_unlock(&WATCH_MU);
}

static ckv_watch *watch_start(watch_state *ws, long want) {
    memset(ws, 0, sizeof *ws);
    ws->want = want;
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.buffer_size = (size_t)want + 1024; /* measure delivery, not overflow */
    ckv_watch *watch = NULL;
    ckv_error *err = NULL;
    check(ckv_watch_callback(STORE, "/bench/", 7, &opts, on_event, ws, &watch, &err), err,
          "watch");
    return watch;
}

/* The poll form's reader: one thread blocked in ckv_watch_next, as a nats.c watcher is. */
typedef struct poll_reader {
    ckv_watch *watch;
    watch_state *ws;
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

/* Puts warm + n times and records, for each, the time from just before the put to the
 * watcher's receipt of its revision. */
static int time_watch(ckv_watch *watch, watch_state *ws, long warm, uint64_t *lat,
                      uint64_t *elapsed) {
    char *val = malloc((size_t)A.value_size);
    char key[64];
    uint64_t start = 0;
    for (long i = 0; i < warm + A.n; i++) {
        if (i == warm)
            start = bench_now_ns();
        size_t key_len = key_of(key, sizeof key, "bench", i % 64);
        uint64_t rev = 0, t0 = bench_now_ns();
        bench_fill_value(val, A.value_size, t0);
        put_or_die(key, key_len, val, &rev, "put");
        pthread_mutex_lock(&WATCH_MU);
        while (ws->seen_rev < rev && !ws->failed)
            pthread_cond_wait(&WATCH_CV, &WATCH_MU);
        uint64_t seen_at = ws->seen_at;
        int failed = ws->failed;
        pthread_mutex_unlock(&WATCH_MU);
        if (failed) {
            free(val);
            ckv_watch_close(watch);
            return bench_fail(DRIVER, &A, "the watch ended before revision %llu",
                              (unsigned long long)rev);
        }
        if (i >= warm)
            lat[i - warm] = seen_at - t0;
    }
    *elapsed = bench_now_ns() - start;
    free(val);
    return 0;
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
    watch_state ws;
    ckv_watch *watch = watch_start(&ws, warm + A.n);
    if (time_watch(watch, &ws, warm, lat, &elapsed) != 0)
        return 1;
    ckv_watch_close(watch);

    memset(&ws, 0, sizeof ws);
    ws.want = warm + A.n;
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.buffer_size = (size_t)(warm + A.n) + 1024;
    ckv_error *err = NULL;
    check(ckv_watch_open(STORE, "/bench/", 7, &opts, &watch, &err), err, "watch");
    poll_reader reader = {watch, &ws};
    pthread_t thread;
    pthread_create(&thread, NULL, poll_events, &reader);
    if (time_watch(watch, &ws, warm, poll_lat, &poll_elapsed) != 0)
        return 1;
    ckv_watch_close(watch); /* ends the reader's ckv_watch_next with CKV_CLOSED */
    pthread_join(thread, NULL);

    qsort(poll_lat, (size_t)A.n, sizeof(uint64_t), bench_cmp_u64);
    char extra[160];
    snprintf(extra, sizeof extra, "\"poll_p50_us\": %.2f, \"poll_p99_us\": %.2f",
             bench_pct_us(poll_lat, A.n, 50), bench_pct_us(poll_lat, A.n, 99));
    bench_report(DRIVER, &A, A.n, elapsed, lat, A.n, extra);
    free(lat);
    free(poll_lat);
    return 0;
}

static int run_watch_fanout(void) {
    char *val = malloc((size_t)A.value_size);
    char key[64];
    watch_state *ws = calloc((size_t)A.watchers, sizeof(watch_state));
    ckv_watch **watches = calloc((size_t)A.watchers, sizeof(ckv_watch *));
    bench_fill_value(val, A.value_size, 0);
    warmup(val);
    bench_phase(&A, "baseline");
    for (long i = 0; i < A.watchers; i++)
        watches[i] = watch_start(&ws[i], A.n);
    bench_phase(&A, "watchers_ready");
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        size_t key_len = key_of(key, sizeof key, "bench", i % 64);
        put_or_die(key, key_len, val, NULL, "put");
    }
    pthread_mutex_lock(&WATCH_MU);
    int failed = 0;
    while (WATCHERS_DONE < A.watchers && !failed) {
        pthread_cond_wait(&WATCH_CV, &WATCH_MU);
        for (long i = 0; i < A.watchers && !failed; i++)
            failed = ws[i].failed;
    }
    uint64_t last = start;
    for (long i = 0; i < A.watchers; i++)
        if (ws[i].done_at > last)
            last = ws[i].done_at;
    pthread_mutex_unlock(&WATCH_MU);
    if (failed)
        return bench_fail(DRIVER, &A, "a watcher ended early");
    for (long i = 0; i < A.watchers; i++)
        ckv_watch_close(watches[i]);
    char extra[160];
    snprintf(extra, sizeof extra, "\"events\": %ld, \"events_per_s\": %.1f, \"server_consumers\": 1",
             A.n * A.watchers, (double)(A.n * A.watchers) / ((double)(last - start) / 1e9));
    bench_report(DRIVER, &A, A.n, last - start, NULL, 0, extra);
    free(watches);
    free(ws);
    free(val);
    return 0;
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
    char *val = malloc((size_t)A.value_size);
    bench_fill_value(val, A.value_size, 0);
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
    const char *w = A.workload;
    int kv = !strcmp(w, "put") || !strcmp(w, "get") || !strcmp(w, "update") ||
             !strcmp(w, "put_concurrent");
    int watch = !strcmp(w, "watch_latency") || !strcmp(w, "watch_fanout") ||
                !strcmp(w, "dispatch");
    if (!kv && !watch)
        return bench_unavailable(DRIVER, &A, "no %s workload for coordkv", w);
    if (open_store() != 0)
        return 0;

    int rc;
    if (!strcmp(w, "put"))
        rc = run_put();
    else if (!strcmp(w, "get"))
        rc = run_get();
    else if (!strcmp(w, "update"))
        rc = run_update();
    else if (!strcmp(w, "put_concurrent"))
        rc = run_put_concurrent();
    else if (!strcmp(w, "watch_latency"))
        rc = run_watch_latency();
    else if (!strcmp(w, "watch_fanout"))
        rc = run_watch_fanout();
    else
        rc = run_dispatch();
    ckv_close(STORE);
    return rc;
}
