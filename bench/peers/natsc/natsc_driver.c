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

static size_t key_of(char *out, size_t cap, const char *space, long i) {
    return (size_t)snprintf(out, cap, "%s.k%08ld", space, i);
}

static void put(const char *key, size_t key_len, const char *val, uint64_t *rev) {
    (void)key_len;
    check(kvStore_Put(rev, KV, key, val, (int)A.value_size), "put");
}

static const bench_client CLIENT = {DRIVER, &A, key_of, put};

static void put_op(bench_work *w, long i) {
    char key[64];
    key_of(key, sizeof key, "bench", i);
    check(kvStore_Put(NULL, KV, key, w->val, (int)A.value_size), "put");
}

static void get_op(bench_work *w, long i) {
    kvEntry *e = NULL;
    char key[64];
    key_of(key, sizeof key, "bench", i % w->keyspace);
    check(kvStore_Get(&e, KV, key), "get");
    if (kvEntry_ValueLen(e) != (int)A.value_size) {
        bench_fail(DRIVER, &A, "get returned %d bytes", kvEntry_ValueLen(e));
        exit(1);
    }
    kvEntry_Destroy(e);
}

static void update_op(bench_work *w, long i) {
    (void)i;
    check(kvStore_Update(&w->rev, KV, w->key, w->val, (int)A.value_size, w->rev), "update");
}

static int run_put(void) { return bench_run_put(&CLIENT, put_op); }
static int run_get(void) { return bench_run_get(&CLIENT, get_op); }
static int run_update(void) { return bench_run_update(&CLIENT, "bench.counter", update_op); }
static int run_put_concurrent(void) { return bench_run_put_concurrent(&CLIENT); }

/* --- watches ------------------------------------------------------------------------ */

/* A watcher and the thread pulling it, with a lock of its own. */
typedef struct watcher {
    bench_watch_state s;
    kvWatcher *w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
} watcher;

static void *watch_loop(void *arg) {
    watcher *w = arg;
    for (;;) {
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, w->w, 30000);
        if (s != NATS_OK) {
            bench_watch_failed(&w->s);
            return NULL;
        }
        if (e == NULL) /* end of the initial values: nothing to count */
            continue;
        int done = bench_watch_event(&w->s, kvEntry_Revision(e), bench_now_ns());
        kvEntry_Destroy(e);
        if (done)
            return NULL;
    }
}

static void watch_start(watcher *w, long want) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    bench_watch_init(&w->s, &w->mu, &w->cv, NULL, want);
    check(kvStore_Watch(&w->w, KV, "bench.>", NULL), "watch");
    pthread_create(&w->thread, NULL, watch_loop, w);
}

static int run_watch_latency(void) {
    long warm = bench_warmup_count(A.n);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)A.n);
    uint64_t elapsed = 0;
    watcher w;
    watch_start(&w, warm + A.n);
    if (bench_time_watch(&CLIENT, &w.s, warm, lat, &elapsed) != 0)
        return 1;
    pthread_join(w.thread, NULL);
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

static watcher *WATCHERS;

static void fanout_watch(long i) { watch_start(&WATCHERS[i], A.n); }

static uint64_t fanout_last_event(uint64_t start) {
    uint64_t last = start;
    for (long i = 0; i < A.watchers; i++) {
        pthread_join(WATCHERS[i].thread, NULL);
        if (WATCHERS[i].s.failed)
            return 0;
        if (WATCHERS[i].s.done_at > last)
            last = WATCHERS[i].s.done_at;
    }
    return last;
}

static int run_watch_fanout(void) {
    if (A.watchers > MAX_FANOUT_WATCHERS)
        return bench_unavailable(DRIVER, &A,
                                 "nats.c watchers are pulled by one thread each; %ld threads "
                                 "exceeds the %d this driver allows",
                                 A.watchers, MAX_FANOUT_WATCHERS);
    WATCHERS = calloc((size_t)A.watchers, sizeof(watcher));
    char extra[64];
    snprintf(extra, sizeof extra, "\"raised_max_consumers\": %ld", raise_max_consumers(A.watchers));
    return bench_watch_fanout(&CLIENT, fanout_watch, fanout_last_event, extra);
}

static const bench_workload WORKLOADS[] = {
    {"put", run_put}, {"get", run_get}, {"update", run_update},
    {"put_concurrent", run_put_concurrent}, {"watch_latency", run_watch_latency},
    {"watch_fanout", run_watch_fanout}, {NULL, NULL},
};

int main(int argc, char **argv) {
    A = bench_parse(argc, argv);
    if (strncmp(A.url, "nats://", 7) != 0)
        return bench_unavailable(DRIVER, &A, "nats.c only speaks to a NATS server, not %s", A.url);
    const bench_workload *workload = bench_find(WORKLOADS, &A);
    if (workload == NULL)
        return bench_unavailable(DRIVER, &A, "no %s workload for nats.c", A.workload);

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

    int rc = workload->run();

    js_DeleteKeyValue(JS, A.bucket);
    kvStore_Destroy(KV);
    jsCtx_Destroy(JS);
    natsConnection_Destroy(nc);
    return rc;
}
