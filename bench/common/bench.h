/*
 * The C side of the driver protocol (see bench/README.md), shared by the nats.c peer and
 * the coordkv C driver so both parse the same flags, time the same way and print the same
 * JSON line. Header-only: each driver is one .c file plus this, built by bench/run.py.
 *
 * Latency samples are taken with CLOCK_MONOTONIC around each call and kept in full; the
 * percentiles are exact (sorted samples), not estimated, because the runs are small.
 */
#ifndef COORDKV_BENCH_H
#define COORDKV_BENCH_H

#define _GNU_SOURCE
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
    int sync; /* handshake with the harness around watcher setup (see bench_phase) */
} bench_args;

static inline void bench_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s WORKLOAD --url URL [--bucket B] [--n N] [--threads T]\n"
            "          [--value-size S] [--watchers W] [--sync]\n"
            "workloads: put get update put_concurrent watch_latency watch_fanout dispatch\n",
            prog);
    exit(2);
}

static inline bench_args bench_parse(int argc, char **argv) {
    bench_args a = {NULL, NULL, "bench", 1000, 1, 128, 1, 0};
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
        else
            bench_usage(argv[0]);
    }
    if (a.url == NULL || a.n < 1 || a.threads < 1 || a.value_size < 16 || a.watchers < 1)
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

/* A workload this driver (or its backend, or the library as built) cannot run. */
static inline int bench_unavailable(const char *driver, const bench_args *a, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (char *c = reason; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            *c = ' ';
    printf("{\"driver\": \"%s\", \"workload\": \"%s\", \"status\": \"unavailable\", "
           "\"reason\": \"%s\"}\n",
           driver, a->workload, reason);
    fflush(stdout);
    return 0;
}

/* A failure while running: the harness records it as an error, not as a number. */
static inline int bench_fail(const char *driver, const bench_args *a, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (char *c = reason; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            *c = ' ';
    printf("{\"driver\": \"%s\", \"workload\": \"%s\", \"status\": \"error\", "
           "\"reason\": \"%s\"}\n",
           driver, a->workload, reason);
    fflush(stdout);
    return 1;
}

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

#endif /* COORDKV_BENCH_H */
