/*
 * The nats.c peer: the official C client (Debian libnats-dev) doing each workload the
 * way a C user of JetStream KV would — one connection, one kvStore shared by every
 * thread, blocking kvStore_* calls, kvWatcher_Next pulled from a thread per watcher
 * (nats.c's watcher has no callback form). Speaks the driver protocol of bench/README.md.
 */
#include "../../common/bench.h"

#include <nats/nats.h>
#include <pthread.h>

#define DRIVER "natsc"

static bench_args A;
static kvStore *KV;
static jsCtx *JS;

static int check(natsStatus s, const char *what) {
    if (s == NATS_OK)
        return 0;
    bench_fail(DRIVER, &A, "%s: %s (%s)", what, natsStatus_GetText(s), nats_GetLastError(NULL));
    exit(1);
}

static void key_of(char *out, size_t cap, const char *space, long i) {
    snprintf(out, cap, "%s.k%08ld", space, i);
}

static void warmup(char *val) {
    char key[64];
    long w = bench_warmup_count(A.n);
    for (long i = 0; i < w; i++) {
        key_of(key, sizeof key, "warm", i % 16);
        check(kvStore_Put(NULL, KV, key, val, (int)A.value_size), "warm-up put");
    }
}

static int run_put(void) {
    char *val = malloc((size_t)A.value_size);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    char key[64];
    bench_fill_value(val, A.value_size, 0);
    warmup(val);
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        key_of(key, sizeof key, "bench", i);
        uint64_t t0 = bench_now_ns();
        check(kvStore_Put(NULL, KV, key, val, (int)A.value_size), "put");
        lat[i] = bench_now_ns() - t0;
    }
    bench_report(DRIVER, &A, A.n, bench_now_ns() - start, lat, A.n, "");
    return 0;
}

static int run_get(void) {
    char *val = malloc((size_t)A.value_size);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    char key[64];
    long keyspace = A.n < 1000 ? A.n : 1000;
    bench_fill_value(val, A.value_size, 0);
    for (long i = 0; i < keyspace; i++) {
        key_of(key, sizeof key, "bench", i);
        check(kvStore_Put(NULL, KV, key, val, (int)A.value_size), "seed put");
    }
    long w = bench_warmup_count(A.n);
    for (long i = 0; i < w; i++) {
        kvEntry *e = NULL;
        key_of(key, sizeof key, "bench", i % keyspace);
        check(kvStore_Get(&e, KV, key), "warm-up get");
        kvEntry_Destroy(e);
    }
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        kvEntry *e = NULL;
        key_of(key, sizeof key, "bench", i % keyspace);
        uint64_t t0 = bench_now_ns();
        check(kvStore_Get(&e, KV, key), "get");
        if (kvEntry_ValueLen(e) != (int)A.value_size)
            return bench_fail(DRIVER, &A, "get returned %d bytes", kvEntry_ValueLen(e));
        kvEntry_Destroy(e);
        lat[i] = bench_now_ns() - t0;
    }
    bench_report(DRIVER, &A, A.n, bench_now_ns() - start, lat, A.n, "");
    return 0;
}

static int run_update(void) {
    char *val = malloc((size_t)A.value_size);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    uint64_t rev = 0;
    bench_fill_value(val, A.value_size, 0);
    warmup(val);
    check(kvStore_Put(&rev, KV, "bench.counter", val, (int)A.value_size), "seed put");
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        uint64_t t0 = bench_now_ns();
        check(kvStore_Update(&rev, KV, "bench.counter", val, (int)A.value_size, rev), "update");
        lat[i] = bench_now_ns() - t0;
    }
    bench_report(DRIVER, &A, A.n, bench_now_ns() - start, lat, A.n, "");
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
        key_of(key, sizeof key, "bench", w->from + i);
        uint64_t t0 = bench_now_ns();
        check(kvStore_Put(NULL, KV, key, val, (int)A.value_size), "concurrent put");
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

typedef struct watch_state {
    kvWatcher *w;
    long want;              /* data events to receive before stopping */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t seen_rev;      /* latest revision received */
    uint64_t seen_at;       /* when it was received */
    uint64_t done_at;       /* when `want` events were in */
    int failed;
} watch_state;

static void *watch_loop(void *arg) {
    watch_state *ws = arg;
    long got = 0;
    while (got < ws->want) {
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, ws->w, 30000);
        if (s != NATS_OK) {
            pthread_mutex_lock(&ws->mu);
            ws->failed = 1;
            pthread_cond_broadcast(&ws->cv);
            pthread_mutex_unlock(&ws->mu);
            return NULL;
        }
        if (e == NULL) /* end of the initial values: nothing to count */
            continue;
        uint64_t now = bench_now_ns();
        got++;
        pthread_mutex_lock(&ws->mu);
        ws->seen_rev = kvEntry_Revision(e);
        ws->seen_at = now;
        if (got == ws->want)
            ws->done_at = now;
        pthread_cond_broadcast(&ws->cv);
        pthread_mutex_unlock(&ws->mu);
        kvEntry_Destroy(e);
    }
    return NULL;
}

static void watch_start(watch_state *ws, long want, pthread_t *tid) {
    memset(ws, 0, sizeof *ws);
    ws->want = want;
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    check(kvStore_Watch(&ws->w, KV, "bench.>", NULL), "watch");
    pthread_create(tid, NULL, watch_loop, ws);
}

static int run_watch_latency(void) {
    long warm = bench_warmup_count(A.n);
    char *val = malloc((size_t)A.value_size);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    char key[64];
    watch_state ws;
    pthread_t tid;
    watch_start(&ws, warm + A.n, &tid);
    uint64_t start = 0;
    for (long i = 0; i < warm + A.n; i++) {
        if (i == warm)
            start = bench_now_ns();
        key_of(key, sizeof key, "bench", i % 64);
        uint64_t rev = 0, t0 = bench_now_ns();
        bench_fill_value(val, A.value_size, t0);
        check(kvStore_Put(&rev, KV, key, val, (int)A.value_size), "put");
        pthread_mutex_lock(&ws.mu);
        while (ws.seen_rev < rev && !ws.failed)
            pthread_cond_wait(&ws.cv, &ws.mu);
        uint64_t seen_at = ws.seen_at;
        int failed = ws.failed;
        pthread_mutex_unlock(&ws.mu);
        if (failed)
            return bench_fail(DRIVER, &A, "watcher stopped before revision %llu",
                              (unsigned long long)rev);
        if (i >= warm)
            lat[i - warm] = seen_at - t0;
    }
    uint64_t elapsed = bench_now_ns() - start;
    pthread_join(tid, NULL);
    bench_report(DRIVER, &A, A.n, elapsed, lat, A.n, "");
    return 0;
}

/*
 * nats-server 2.15 caps every stream at 1000 consumers unless the stream says otherwise,
 * and each watcher here is its own consumer: raise the bucket stream's limit so the run
 * measures the client instead of stopping at the cap (reported as "raised_max_consumers").
 */
static long raise_max_consumers(long watchers) {
    if (watchers < 1000)
        return 0;
    char stream[256];
    jsStreamInfo *si = NULL, *updated = NULL;
    jsErrCode jerr = 0;
    snprintf(stream, sizeof stream, "KV_%s", A.bucket);
    check(js_GetStreamInfo(&si, JS, stream, NULL, &jerr), "stream info");
    si->Config->MaxConsumers = watchers + 16;
    check(js_UpdateStream(&updated, JS, si->Config, NULL, &jerr), "raise max consumers");
    jsStreamInfo_Destroy(updated);
    jsStreamInfo_Destroy(si);
    return watchers + 16;
}

/* One OS thread per watcher: above this the run measures thread scheduling, not nats.c. */
#define MAX_FANOUT_WATCHERS 1000

static int run_watch_fanout(void) {
    if (A.watchers > MAX_FANOUT_WATCHERS)
        return bench_unavailable(DRIVER, &A,
                                 "nats.c watchers are pulled by one thread each; %ld threads "
                                 "exceeds the %d this driver allows",
                                 A.watchers, MAX_FANOUT_WATCHERS);
    char *val = malloc((size_t)A.value_size);
    char key[64];
    watch_state *ws = calloc((size_t)A.watchers, sizeof(watch_state));
    pthread_t *tids = calloc((size_t)A.watchers, sizeof(pthread_t));
    bench_fill_value(val, A.value_size, 0);
    warmup(val);
    long raised = raise_max_consumers(A.watchers);
    bench_phase(&A, "baseline");
    for (long i = 0; i < A.watchers; i++)
        watch_start(&ws[i], A.n, &tids[i]);
    bench_phase(&A, "watchers_ready");
    uint64_t start = bench_now_ns();
    for (long i = 0; i < A.n; i++) {
        key_of(key, sizeof key, "bench", i % 64);
        check(kvStore_Put(NULL, KV, key, val, (int)A.value_size), "put");
    }
    uint64_t last = start;
    for (long i = 0; i < A.watchers; i++) {
        pthread_join(tids[i], NULL);
        if (ws[i].failed)
            return bench_fail(DRIVER, &A, "watcher %ld stopped early", i);
        if (ws[i].done_at > last)
            last = ws[i].done_at;
    }
    char extra[160];
    snprintf(extra, sizeof extra,
             "\"events\": %ld, \"events_per_s\": %.1f, \"raised_max_consumers\": %ld",
             A.n * A.watchers, (double)(A.n * A.watchers) / ((double)(last - start) / 1e9),
             raised);
    bench_report(DRIVER, &A, A.n, last - start, NULL, 0, extra);
    return 0;
}

int main(int argc, char **argv) {
    A = bench_parse(argc, argv);
    if (strncmp(A.url, "nats://", 7) != 0)
        return bench_unavailable(DRIVER, &A, "nats.c only speaks to a NATS server, not %s", A.url);
    const char *w = A.workload;
    int known = !strcmp(w, "put") || !strcmp(w, "get") || !strcmp(w, "update") ||
                !strcmp(w, "put_concurrent") || !strcmp(w, "watch_latency") ||
                !strcmp(w, "watch_fanout");
    if (!known)
        return bench_unavailable(DRIVER, &A, "no %s workload for nats.c", w);

    natsConnection *nc = NULL;
    kvConfig cfg;
    check(natsConnection_ConnectTo(&nc, A.url), "connect");
    check(natsConnection_JetStream(&JS, nc, NULL), "jetstream");
    kvConfig_Init(&cfg);
    cfg.Bucket = A.bucket;
    cfg.History = 16;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = 1;
    check(js_CreateKeyValue(&KV, JS, &cfg), "create bucket");

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
    else
        rc = run_watch_fanout();

    js_DeleteKeyValue(JS, A.bucket);
    kvStore_Destroy(KV);
    jsCtx_Destroy(JS);
    natsConnection_Destroy(nc);
    return rc;
}
