/*
 * The C side of the driver protocol (see bench/README.md), shared by the nats.c peer and
 * the coordkv C driver so both parse the same flags, time the same way and print the same
 * JSON line. Header-only: each driver is one .c file plus this, built by bench/run.py.
 *
 * Latency samples are taken with CLOCK_MONOTONIC around each call and kept in full; the
 * percentiles are exact (sorted samples), not estimated, because the runs are small.
 *
 * The workload loops live here too (bench_run_*, bench_time_watch, bench_watch_fanout):
 * a driver supplies its key syntax, its put and one function per timed operation in a
 * bench_client, so both drivers pay the same function-pointer call per operation.
 */
#ifndef COORDKV_BENCH_H
#define COORDKV_BENCH_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_args {
    const char *workload;
    const char *url;
    const char *bucket;
    long n;
    long threads;
    long value_size;
    long watchers;
    long ttl_ms; /* the lease TTL asked for by the lease workloads (coordkv only) */
    long rounds; /* lease_expiry: deaths in one run */
    int sync; /* handshake with the harness around watcher setup (see bench_phase) */
} bench_args;

static inline void bench_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s WORKLOAD --url URL [--bucket B] [--n N] [--threads T]\n"
            "          [--value-size S] [--watchers W] [--ttl-ms T] [--rounds R] [--sync]\n"
            "workloads: put get update put_concurrent watch_latency watch_fanout dispatch\n"
            "           lease_expiry lease_keepalive (coordkv only)\n",
            prog);
    exit(2);
}

static inline bench_args bench_parse(int argc, char **argv) {
    bench_args a = {NULL, NULL, "bench", 1000, 1, 128, 1, 2000, 1, 0};
    if (argc < 2)
        bench_usage(argv[0]);
    a.workload = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--sync") == 0) {
            a.sync = 1;
            continue;
        }
        if (i + 1 >= argc)
            bench_usage(argv[0]);
        const char *val = argv[++i];
        if (strcmp(flag, "--url") == 0)
            a.url = val;
        else if (strcmp(flag, "--bucket") == 0)
            a.bucket = val;
        else if (strcmp(flag, "--n") == 0)
            a.n = atol(val);
        else if (strcmp(flag, "--threads") == 0)
            a.threads = atol(val);
        else if (strcmp(flag, "--value-size") == 0)
            a.value_size = atol(val);
        else if (strcmp(flag, "--watchers") == 0)
            a.watchers = atol(val);
        else if (strcmp(flag, "--ttl-ms") == 0)
            a.ttl_ms = atol(val);
        else if (strcmp(flag, "--rounds") == 0)
            a.rounds = atol(val);
        else
            bench_usage(argv[0]);
    }
    if (a.url == NULL || a.n < 1 || a.threads < 1 || a.value_size < 16 || a.watchers < 1 ||
        a.ttl_ms < 1 || a.rounds < 1)
        bench_usage(argv[0]);
    return a;
}

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Warm-up writes/reads before timing: enough to settle connections and allocators. */
static inline long bench_warmup_count(long n) {
    long w = n / 10;
    if (w < 10)
        w = 10;
    if (w > 1000)
        w = 1000;
    return w;
}

static inline int bench_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static inline double bench_pct_us(const uint64_t *sorted, long count, double pct) {
    if (count <= 0)
        return 0.0;
    long rank = (long)(pct / 100.0 * (double)count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return (double)sorted[rank - 1] / 1000.0;
}

/*
 * Prints the result line. `samples` (may be NULL) are per-op latencies in ns and are
 * sorted in place; `extra_json` is either "" or a string of `"k": v` pairs to append.
 */
static inline void bench_report(const char *driver, const bench_args *a, long ops, uint64_t elapsed_ns,
                         uint64_t *samples, long sample_count, const char *extra_json) {
    double secs = (double)elapsed_ns / 1e9;
    double p50 = 0, p99 = 0;
    if (samples && sample_count > 0) {
        qsort(samples, (size_t)sample_count, sizeof(uint64_t), bench_cmp_u64);
        p50 = bench_pct_us(samples, sample_count, 50.0);
        p99 = bench_pct_us(samples, sample_count, 99.0);
    }
    printf("{\"driver\": \"%s\", \"workload\": \"%s\", \"status\": \"ok\", \"n\": %ld, "
           "\"threads\": %ld, \"watchers\": %ld, \"value_size\": %ld, \"ops\": %ld, "
           "\"seconds\": %.6f, \"ops_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f%s%s}\n",
           driver, a->workload, a->n, a->threads, a->watchers, a->value_size, ops, secs,
           secs > 0 ? (double)ops / secs : 0.0, p50, p99, extra_json[0] ? ", " : "", extra_json);
    fflush(stdout);
}

/*
 * Prints a result line with a status other than "ok" and a reason (quotes and control
 * bytes blanked); returns the exit code the status calls for: 1 for "error", else 0.
 */
static inline int bench_status(const char *driver, const bench_args *a, const char *status,
                               const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (char *c = reason; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            *c = ' ';
    printf("{\"driver\": \"%s\", \"workload\": \"%s\", \"status\": \"%s\", "
           "\"reason\": \"%s\"}\n",
           driver, a->workload, status, reason);
    fflush(stdout);
    return strcmp(status, "error") == 0;
}

/* A workload this driver (or its backend, or the library as built) cannot run. */
#define bench_unavailable(driver, a, ...) bench_status(driver, a, "unavailable", __VA_ARGS__)

/* A failure while running: the harness records it as an error, not as a number. */
#define bench_fail(driver, a, ...) bench_status(driver, a, "error", __VA_ARGS__)

/*
 * The watcher handshake: with --sync, announce a phase and wait for the harness to answer
 * one line on stdin, so it can sample this process's RSS and the server's consumer count
 * at exactly that point. Without --sync it is a no-op.
 */
static inline void bench_phase(const bench_args *a, const char *phase) {
    if (!a->sync)
        return;
    printf("{\"phase\": \"%s\"}\n", phase);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) {
        /* the harness went away: nothing to measure for */
        exit(3);
    }
}

/* A value of `size` bytes whose first 16 hex digits carry `stamp` (a send time or index). */
static inline void bench_fill_value(char *buf, long size, uint64_t stamp) {
    memset(buf, 'v', (size_t)size);
    char head[17];
    snprintf(head, sizeof head, "%016llx", (unsigned long long)stamp);
    memcpy(buf, head, 16);
}

/* A malloc'ed value of a->value_size bytes, stamped as bench_fill_value does. */
static inline char *bench_value(const bench_args *a, uint64_t stamp) {
    char *val = malloc((size_t)a->value_size);
    bench_fill_value(val, a->value_size, stamp);
    return val;
}

/* --- the workload loops ------------------------------------------------------------- */

/*
 * What one timed operation works on: the value to write, the number of keys reads cycle
 * over, and for update the key and the revision the next write must match (the op keeps
 * it current).
 */
typedef struct bench_work {
    const char *val;
    long keyspace;
    const char *key;
    size_t key_len;
    uint64_t rev;
} bench_work;

/* One timed operation, the i-th of a run; it exits through bench_fail on error. */
typedef void (*bench_op)(bench_work *w, long i);

/*
 * The client as the loops see it. `key_of` writes the key of index i in `space` ("bench",
 * "warm") in the client's syntax and returns its length; `put` writes a->value_size bytes
 * of `val`, stores the new revision in *rev unless rev is NULL, and exits through
 * bench_fail on error.
 */
typedef struct bench_client {
    const char *driver;
    const bench_args *a;
    size_t (*key_of)(char *out, size_t cap, const char *space, long i);
    void (*put)(const char *key, size_t key_len, const char *val, uint64_t *rev);
} bench_client;

/* The warm-up before a timed loop: bench_warmup_count(n) puts cycling over 16 other keys. */
static inline void bench_warmup(const bench_client *c, const char *val) {
    char key[64];
    long w = bench_warmup_count(c->a->n);
    for (long i = 0; i < w; i++)
        c->put(key, c->key_of(key, sizeof key, "warm", i % 16), val, NULL);
}

/*
 * Runs op(0..n-1) and reports it. Over the network a clock read is noise next to a round
 * trip, so one pass gives both rates and latencies. In memory a clock read is a visible
 * share of an operation, so mem:// gets a first pass with no per-op clock (the rate) and
 * a second pass for the latencies.
 */
static inline void bench_measure(const bench_client *c, bench_op op, bench_work *w) {
    long n = c->a->n;
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)n);
    uint64_t elapsed = 0;
    int in_memory = strncmp(c->a->url, "mem:", 4) == 0;
    if (in_memory) {
        uint64_t start = bench_now_ns();
        for (long i = 0; i < n; i++)
            op(w, i);
        elapsed = bench_now_ns() - start;
    }
    uint64_t start = bench_now_ns();
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        op(w, i);
        lat[i] = bench_now_ns() - t0;
    }
    if (!in_memory)
        elapsed = bench_now_ns() - start;
    bench_report(c->driver, c->a, n, elapsed, lat, n,
                 in_memory ? "\"rate_pass\": \"untimed\"" : "");
    free(lat);
}

/* put: n writes of distinct keys; `put_op` writes the key of index i. */
static inline int bench_run_put(const bench_client *c, bench_op put_op) {
    bench_work w = {bench_value(c->a, 0), 0, NULL, 0, 0};
    bench_warmup(c, w.val);
    bench_measure(c, put_op, &w);
    return 0;
}

/* get: n reads cycling over the first w->keyspace keys, written beforehand; `get_op`
 * reads the key of index i % w->keyspace and checks the value's length. */
static inline int bench_run_get(const bench_client *c, bench_op get_op) {
    char key[64];
    bench_work w = {bench_value(c->a, 0), c->a->n < 1000 ? c->a->n : 1000, NULL, 0, 0};
    for (long i = 0; i < w.keyspace; i++)
        c->put(key, c->key_of(key, sizeof key, "bench", i), w.val, NULL);
    long warm = bench_warmup_count(c->a->n);
    for (long i = 0; i < warm; i++)
        get_op(&w, i);
    bench_measure(c, get_op, &w);
    return 0;
}

/* update: n compare-and-swap writes of `key`, each at the revision the previous returned;
 * `update_op` writes w->key at w->rev and stores the new revision there. */
static inline int bench_run_update(const bench_client *c, const char *key, bench_op update_op) {
    bench_work w = {bench_value(c->a, 0), 0, key, strlen(key), 0};
    bench_warmup(c, w.val);
    c->put(w.key, w.key_len, w.val, &w.rev);
    bench_measure(c, update_op, &w);
    return 0;
}

typedef struct bench_worker {
    const bench_client *c;
    long id, from, count;
    uint64_t *lat;
    pthread_barrier_t *go;
} bench_worker;

static inline void *bench_put_worker(void *arg) {
    bench_worker *w = arg;
    char *val = bench_value(w->c->a, (uint64_t)w->id);
    char key[64];
    pthread_barrier_wait(w->go);
    for (long i = 0; i < w->count; i++) {
        size_t len = w->c->key_of(key, sizeof key, "bench", w->from + i);
        uint64_t t0 = bench_now_ns();
        w->c->put(key, len, val, NULL);
        w->lat[w->from + i] = bench_now_ns() - t0;
    }
    free(val);
    return NULL;
}

/* put_concurrent: n puts split evenly over a->threads threads released together. */
static inline int bench_run_put_concurrent(const bench_client *c) {
    long t = c->a->threads, n = c->a->n;
    char *val = bench_value(c->a, 0);
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)n);
    pthread_t *tids = calloc((size_t)t, sizeof(pthread_t));
    bench_worker *ws = calloc((size_t)t, sizeof(bench_worker));
    pthread_barrier_t go;
    bench_warmup(c, val);
    pthread_barrier_init(&go, NULL, (unsigned)(t + 1));
    for (long i = 0; i < t; i++) {
        ws[i] = (bench_worker){c, i, n * i / t, n * (i + 1) / t - n * i / t, lat, &go};
        pthread_create(&tids[i], NULL, bench_put_worker, &ws[i]);
    }
    pthread_barrier_wait(&go);
    uint64_t start = bench_now_ns();
    for (long i = 0; i < t; i++)
        pthread_join(tids[i], NULL);
    bench_report(c->driver, c->a, n, bench_now_ns() - start, lat, n, "");
    return 0;
}

/* --- watches ------------------------------------------------------------------------ */

/*
 * What one watcher has received: data events counted up to `want`, the newest revision
 * and when it came. The driver's delivery (a callback, a thread pulling events) calls
 * bench_watch_event / bench_watch_failed; `mu` and `cv` may be shared by all watchers or
 * be the watcher's own; `all_done`, when not NULL, counts (under mu) the watchers done.
 */
typedef struct bench_watch_state {
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    long *all_done;
    long want;
    long got;
    uint64_t seen_rev;
    uint64_t seen_at;
    uint64_t done_at; /* when the want-th event came */
    int failed;
} bench_watch_state;

static inline void bench_watch_init(bench_watch_state *ws, pthread_mutex_t *mu,
                                    pthread_cond_t *cv, long *all_done, long want) {
    *ws = (bench_watch_state){mu, cv, all_done, want, 0, 0, 0, 0, 0};
}

/* A data event of revision `rev` received at `now`; returns 1 once `want` are in. */
static inline int bench_watch_event(bench_watch_state *ws, uint64_t rev, uint64_t now) {
    pthread_mutex_lock(ws->mu);
    if (ws->got < ws->want) {
        ws->got++;
        ws->seen_rev = rev;
        ws->seen_at = now;
        if (ws->got == ws->want) {
            ws->done_at = now;
            if (ws->all_done)
                (*ws->all_done)++;
        }
    }
    int done = ws->got == ws->want;
    pthread_cond_broadcast(ws->cv);
    pthread_mutex_unlock(ws->mu);
    return done;
}

/* The watch ended before its events were in. */
static inline void bench_watch_failed(bench_watch_state *ws) {
    pthread_mutex_lock(ws->mu);
    ws->failed = 1;
    pthread_cond_broadcast(ws->cv);
    pthread_mutex_unlock(ws->mu);
}

/*
 * watch_latency's loop: warm + n puts on 64 keys, each waiting until the watcher `ws` has
 * seen its revision; lat[i] (from the n after the warm-up) is from just before the put
 * to the watcher's receipt. Returns non-zero (reported) when the watch ended early.
 */
static inline int bench_time_watch(const bench_client *c, bench_watch_state *ws, long warm,
                                   uint64_t *lat, uint64_t *elapsed) {
    const bench_args *a = c->a;
    char *val = malloc((size_t)a->value_size);
    char key[64];
    uint64_t start = 0;
    for (long i = 0; i < warm + a->n; i++) {
        if (i == warm)
            start = bench_now_ns();
        size_t key_len = c->key_of(key, sizeof key, "bench", i % 64);
        uint64_t rev = 0, t0 = bench_now_ns();
        bench_fill_value(val, a->value_size, t0);
        c->put(key, key_len, val, &rev);
        pthread_mutex_lock(ws->mu);
        while (ws->seen_rev < rev && !ws->failed)
            pthread_cond_wait(ws->cv, ws->mu);
        uint64_t seen_at = ws->seen_at;
        int failed = ws->failed;
        pthread_mutex_unlock(ws->mu);
        if (failed) {
            free(val);
            return bench_fail(c->driver, a, "the watch ended before revision %llu",
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
 * watch_fanout: after the warm-up, `watch(i)` registers watcher i of a->watchers between
 * the two --sync phases, then the clock starts and a->n puts go out on 64 keys;
 * `last_event(start)` returns when the last watcher had its n-th event, or 0 when one
 * ended early. `extra` ("" or `"k": v` pairs) is added to the result line.
 */
static inline int bench_watch_fanout(const bench_client *c, void (*watch)(long i),
                                     uint64_t (*last_event)(uint64_t start), const char *extra) {
    const bench_args *a = c->a;
    char *val = bench_value(a, 0);
    char key[64];
    bench_warmup(c, val);
    bench_phase(a, "baseline");
    for (long i = 0; i < a->watchers; i++)
        watch(i);
    bench_phase(a, "watchers_ready");
    uint64_t start = bench_now_ns();
    for (long i = 0; i < a->n; i++)
        c->put(key, c->key_of(key, sizeof key, "bench", i % 64), val, NULL);
    uint64_t last = last_event(start);
    free(val);
    if (last == 0)
        return bench_fail(c->driver, a, "a watcher ended early");
    char all[256];
    snprintf(all, sizeof all, "\"events\": %ld, \"events_per_s\": %.1f%s%s",
             a->n * a->watchers, (double)(a->n * a->watchers) / ((double)(last - start) / 1e9),
             extra[0] ? ", " : "", extra);
    bench_report(c->driver, a, a->n, last - start, NULL, 0, all);
    return 0;
}

/* --- dispatch --------------------------------------------------------------------- */

/* A workload by name, run once the client is connected. */
typedef struct bench_workload {
    const char *name;
    int (*run)(void);
} bench_workload;

/* The entry of `table` (ended by a NULL name) for a->workload, or NULL. */
static inline const bench_workload *bench_find(const bench_workload *table, const bench_args *a) {
    for (; table->name; table++)
        if (strcmp(table->name, a->workload) == 0)
            return table;
    return NULL;
}

#endif /* COORDKV_BENCH_H */
