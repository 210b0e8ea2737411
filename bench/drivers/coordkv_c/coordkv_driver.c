/*
 * coordkv through its C API (include/coordkv.h, target/release/libcoordkv.so): the same
 * workloads as the nats.c peer, written the way a C user of coordkv would — one store
 * shared by every thread, blocking ckv_* calls. Against `mem://` it measures the embedded
 * backend; against `nats://` the same program runs on JetStream KV, so the two columns
 * differ only in the backend. Beyond the peer's workloads it has coordkv's own lease
 * workloads (lease_expiry, lease_keepalive, and lease_holder, the process lease_expiry
 * starts and kills on NATS), which no peer client could run.
 *
 * A workload whose backend or API is missing from the library as built prints an
 * "unavailable" line (never a crash), so the harness can report the gap and move on.
 */
#include "../../common/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordkv.h"

extern char **environ;

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

/* --- leases (coordkv only: no peer client has them) ------------------------------- */

/*
 * One watch of /bench/ with quiet_writes on, so it sees the holder's attach (PUT), the
 * keepalive's rewrites (quiet PUT) and the deaths (EXPIRED), each stamped on receipt with
 * CLOCK_MONOTONIC. Keys are /bench/k<index>; per key it keeps the latest write and the
 * EXPIRED, and within the keepalive window [win_from, win_to) the rewrites and the gaps
 * between consecutive rewrites of the same key.
 */
typedef struct lease_watch {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    long n;
    long puts;       /* plain PUTs: the attach */
    long quiet;      /* quiet PUTs: keepalive rewrites */
    long expired;    /* keys with their EXPIRED in */
    long unexpected; /* DELETE or PURGE: nothing here should make one */
    int canceled;
    char cancel[200];
    uint64_t *last_write; /* receipt of the key's latest PUT, plain or quiet */
    uint64_t *expired_at; /* receipt of its EXPIRED; 0 before */
    uint64_t win_from, win_to;
    long *win_count;
    uint64_t *win_first, *win_last;
    uint64_t *gaps;
    long gap_count, gap_cap;
} lease_watch;

static void lease_watch_init(lease_watch *lw, long n) {
    memset(lw, 0, sizeof *lw);
    pthread_mutex_init(&lw->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&lw->cv, &attr);
    pthread_condattr_destroy(&attr);
    lw->n = n;
    lw->last_write = calloc((size_t)n, sizeof(uint64_t));
    lw->expired_at = calloc((size_t)n, sizeof(uint64_t));
    lw->win_count = calloc((size_t)n, sizeof(long));
    lw->win_first = calloc((size_t)n, sizeof(uint64_t));
    lw->win_last = calloc((size_t)n, sizeof(uint64_t));
    lw->gap_cap = n * 64;
    lw->gaps = calloc((size_t)lw->gap_cap, sizeof(uint64_t));
}

static void lease_watch_free(lease_watch *lw) {
    free(lw->last_write);
    free(lw->expired_at);
    free(lw->win_count);
    free(lw->win_first);
    free(lw->win_last);
    free(lw->gaps);
}

/* The index of /bench/k<index>, or -1 for any other key. */
static long lease_key_index(const lease_watch *lw, const ckv_entry *e) {
    size_t len = 0;
    const char *key = ckv_entry_key(e, &len);
    if (key == NULL || len < 9 || strncmp(key, "/bench/k", 8) != 0)
        return -1;
    long k = strtol(key + 8, NULL, 10);
    return k >= 0 && k < lw->n ? k : -1;
}

static void on_lease_event(void *user_data, const ckv_event *event) {
    lease_watch *lw = user_data;
    uint64_t now = bench_now_ns();
    ckv_event_type kind = ckv_event_kind(event);
    if (kind == CKV_EVENT_PROGRESS || kind == CKV_EVENT_SYNCED)
        return;
    pthread_mutex_lock(&lw->mu);
    if (kind == CKV_EVENT_CANCELED) {
        lw->canceled = 1;
        const char *msg = ckv_event_message(event);
        snprintf(lw->cancel, sizeof lw->cancel, "%s: %s",
                 ckv_cancel_reason_name(ckv_event_cancel_reason(event)), msg ? msg : "");
    } else {
        const ckv_entry *e = ckv_event_entry(event);
        long k = lease_key_index(lw, e);
        if (k < 0) {
            /* not one of ours */
        } else if (kind == CKV_EVENT_PUT) {
            lw->last_write[k] = now;
            if (!ckv_entry_is_quiet(e)) {
                lw->puts++;
            } else {
                lw->quiet++;
                if (lw->win_from && now >= lw->win_from && (!lw->win_to || now < lw->win_to)) {
                    if (lw->win_count[k] == 0)
                        lw->win_first[k] = now;
                    else if (lw->gap_count < lw->gap_cap)
                        lw->gaps[lw->gap_count++] = now - lw->win_last[k];
                    lw->win_last[k] = now;
                    lw->win_count[k]++;
                }
            }
        } else if (kind == CKV_EVENT_EXPIRED) {
            if (lw->expired_at[k] == 0) {
                lw->expired_at[k] = now;
                lw->expired++;
            }
        } else {
            lw->unexpected++;
        }
    }
    pthread_cond_broadcast(&lw->cv);
    pthread_mutex_unlock(&lw->mu);
}

static ckv_watch *lease_watch_start(lease_watch *lw) {
    ckv_watch_options opts;
    ckv_watch_options_init(&opts);
    opts.prefix = true;
    opts.quiet_writes = true;
    opts.buffer_size = (size_t)lw->n * 4 + 1024;
    ckv_watch *watch = NULL;
    ckv_error *err = NULL;
    check(ckv_watch_callback(STORE, "/bench/", 7, &opts, on_lease_event, lw, &watch, &err), err,
          "watch");
    return watch;
}

/* Waits until *count (under lw->mu) reaches `want`; fails the run when the watch ends or
 * `timeout_ms` passes first. */
static int lease_wait(lease_watch *lw, const long *count, long want, uint64_t timeout_ms,
                      const char *what) {
    uint64_t deadline = bench_now_ns() + timeout_ms * 1000000ull;
    struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
    pthread_mutex_lock(&lw->mu);
    int timed_out = 0;
    while (*count < want && !lw->canceled && !timed_out)
        timed_out = pthread_cond_timedwait(&lw->cv, &lw->mu, &ts) != 0 && *count < want;
    long got = *count;
    int canceled = lw->canceled;
    pthread_mutex_unlock(&lw->mu);
    if (canceled)
        return bench_fail(DRIVER, &A, "the watch ended while waiting for %s: %s", what,
                          lw->cancel);
    if (got < want)
        return bench_fail(DRIVER, &A, "%ld of %ld %s after %llu ms", got, want, what,
                          (unsigned long long)timeout_ms);
    return 0;
}

static void sleep_until(uint64_t at_ns) {
    struct timespec ts = {(time_t)(at_ns / 1000000000ull), (long)(at_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* Grants a lease of A.ttl_ms and attaches A.n keys /bench/k<i> to it; returns the TTL
 * granted. A backend without leases prints "unavailable" and exits 0. */
static uint64_t grant_and_attach(ckv_lease **lease_out) {
    ckv_lease *lease = NULL;
    ckv_error *err = NULL;
    ckv_status s = ckv_lease_grant(STORE, (uint64_t)A.ttl_ms, NULL, &lease, &err);
    if (s == CKV_UNSUPPORTED) {
        bench_unavailable(DRIVER, &A, "%s", ckv_error_message(err));
        ckv_error_free(err);
        exit(0);
    }
    check(s, err, "lease grant");
    ckv_write_options w;
    ckv_write_options_init(&w);
    w.lease = ckv_lease_id(lease);
    char *val = bench_value(&A, 0);
    char key[64];
    for (long i = 0; i < A.n; i++) {
        size_t len = key_of(key, sizeof key, "bench", i);
        check(ckv_put_with(STORE, key, len, (const uint8_t *)val, (size_t)A.value_size, &w, NULL,
                           &err),
              err, "leased put");
    }
    free(val);
    *lease_out = lease;
    return ckv_lease_ttl_ms(lease);
}

static const char *ARGV0;
/* The running holder's pipes: its stdin (never written: it ends when this process does)
 * and its stdout. */
static int HOLDER_STDIN = -1;
static FILE *HOLDER_STDOUT;

/* Kills the holder (SIGKILL), reaps it and closes its pipes. */
static void kill_holder(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (HOLDER_STDOUT)
        fclose(HOLDER_STDOUT);
    if (HOLDER_STDIN >= 0)
        close(HOLDER_STDIN);
    HOLDER_STDOUT = NULL;
    HOLDER_STDIN = -1;
}

/*
 * The holder of the NATS expiry case, started by lease_expiry in a process of its own:
 * grants, attaches, says so on stdout, and keeps the lease alive until it is killed. If
 * its parent goes away instead (stdin ends), it closes its store, which revokes.
 */
static int run_lease_holder(void) {
    if (strncmp(A.url, "nats:", 5) != 0)
        return bench_unavailable(DRIVER, &A, "the holder process is for NATS; mem:// is in-process");
    ckv_lease *lease = NULL;
    uint64_t ttl = grant_and_attach(&lease);
    printf("{\"phase\": \"holding\", \"lease\": %llu, \"ttl_ms\": %llu}\n",
           (unsigned long long)ckv_lease_id(lease), (unsigned long long)ttl);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) {
        /* the parent is gone */
    }
    ckv_lease_free(lease);
    return 0;
}

/*
 * Starts this program as `lease_holder` on the same bucket, its stdin and stdout piped
 * here, and waits for its "holding" line. Returns its pid and stores the TTL granted, or
 * returns 0 after printing the result line when the holder could not hold (unavailable,
 * or an error) and stores the exit code that calls for in *rc_out.
 */
static pid_t spawn_holder(uint64_t *ttl_out, int *rc_out) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
        bench_fail(DRIVER, &A, "pipe: %s", strerror(errno));
        exit(1);
    }
    char n[32], ttl[32], size[32];
    snprintf(n, sizeof n, "%ld", A.n);
    snprintf(ttl, sizeof ttl, "%ld", A.ttl_ms);
    snprintf(size, sizeof size, "%ld", A.value_size);
    char *argv[] = {(char *)ARGV0, "lease_holder", "--url", (char *)A.url, "--bucket",
                    (char *)A.bucket, "--n", n, "--ttl-ms", ttl, "--value-size", size, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(to_child[0]);
    close(from_child[1]);
    if (rc != 0) {
        bench_fail(DRIVER, &A, "cannot start the holder: %s", strerror(rc));
        exit(1);
    }
    HOLDER_STDIN = to_child[1];
    FILE *out = HOLDER_STDOUT = fdopen(from_child[0], "r");
    char line[1024] = "";
    while (fgets(line, sizeof line, out) != NULL) {
        if (line[0] != '{')
            continue;
        const char *granted = strstr(line, "\"ttl_ms\": ");
        if (strstr(line, "\"holding\"") && granted) {
            *ttl_out = strtoull(granted + 10, NULL, 10);
            return pid;
        }
        break;
    }
    kill_holder(pid);
    line[strcspn(line, "\n")] = 0;
    if (strstr(line, "\"unavailable\"")) {
        char *reason = strstr(line, "\"reason\": \"");
        reason = reason ? reason + 11 : line;
        size_t len = strlen(reason);
        if (len >= 2 && strcmp(reason + len - 2, "\"}") == 0)
            reason[len - 2] = 0; /* the end of the holder's line */
        *rc_out = bench_unavailable(DRIVER, &A, "holder: %s", reason);
    } else {
        *rc_out = bench_fail(DRIVER, &A, "the holder did not hold: %s", line);
    }
    return 0;
}

/* A JSON array of `count` nanosecond values as milliseconds. */
static void json_ms_array(FILE *f, const char *name, const uint64_t *v, long count) {
    fprintf(f, ", \"%s\": [", name);
    for (long i = 0; i < count; i++)
        fprintf(f, "%s%.2f", i ? ", " : "", (double)v[i] / 1e6);
    fprintf(f, "]");
}

static double pct_ms(uint64_t *v, long count, double pct) {
    qsort(v, (size_t)count, sizeof(uint64_t), bench_cmp_u64);
    return bench_pct_us(v, count, pct) / 1000.0;
}

/* One death of lease_expiry: per key, kill-to-EXPIRED and EXPIRED-after-its-last-write. */
typedef struct lease_death {
    uint64_t ttl_ns;
    uint64_t since_write; /* the kill after the last write any key had */
    uint64_t last;        /* the kill to the last EXPIRED */
    uint64_t *delays, *after;
} lease_death;

/*
 * One round of lease_expiry: a fresh watch of /bench/, a holder that grants, attaches
 * A.n keys, holds for one TTL plus a random part of a third of it, and dies; then every
 * key's EXPIRED. Fills d->delays and d->after (A.n each). Non-zero after reporting a
 * failure or an unavailable backend (the exit code it calls for in *rc).
 */
static int lease_expiry_round(lease_death *d, int *rc) {
    int nats = strncmp(A.url, "nats:", 5) == 0;
    lease_watch lw;
    lease_watch_init(&lw, A.n);
    ckv_watch *watch = lease_watch_start(&lw);
    ckv_lease *lease = NULL;
    pid_t holder = 0;
    uint64_t ttl = 0;
    *rc = 1;
    if (nats) {
        holder = spawn_holder(&ttl, rc);
        if (holder == 0)
            goto out; /* the holder's failure is reported */
    } else {
        ttl = grant_and_attach(&lease);
    }
    if (lease_wait(&lw, &lw.puts, A.n, 60000, "attach PUTs"))
        goto out;
    uint64_t attached = bench_now_ns(), ttl_ns = ttl * 1000000ull;
    sleep_until(attached + ttl_ns + (uint64_t)(drand48() * (double)ttl_ns / 3.0));

    uint64_t killed = bench_now_ns();
    if (nats) {
        kill_holder(holder);
        holder = 0;
    } else {
        ckv_error *err = NULL;
        check(ckv_lease_abandon(STORE, ckv_lease_id(lease), &err), err, "lease abandon");
    }
    pthread_mutex_lock(&lw.mu);
    uint64_t renewed = 0;
    for (long k = 0; k < A.n; k++)
        if (lw.last_write[k] > renewed && lw.last_write[k] <= killed)
            renewed = lw.last_write[k];
    pthread_mutex_unlock(&lw.mu);
    if (lease_wait(&lw, &lw.expired, A.n, 3 * ttl + 15000, "EXPIRED events"))
        goto out;
    ckv_watch_close(watch); /* no callback runs after this returns */
    watch = NULL;
    if (lw.unexpected) {
        bench_fail(DRIVER, &A, "%ld DELETE/PURGE events; a death makes only EXPIRED",
                   lw.unexpected);
        goto out;
    }
    d->ttl_ns = ttl_ns;
    d->since_write = killed - renewed;
    d->last = 0;
    for (long k = 0; k < A.n; k++) {
        if (lw.expired_at[k] < killed) {
            bench_fail(DRIVER, &A, "key %ld expired %.1f ms before its holder died", k,
                       (double)(killed - lw.expired_at[k]) / 1e6);
            goto out;
        }
        d->delays[k] = lw.expired_at[k] - killed;
        d->after[k] = lw.expired_at[k] - lw.last_write[k];
        if (d->delays[k] > d->last)
            d->last = d->delays[k];
    }
    *rc = 0;
out:
    if (holder)
        kill_holder(holder);
    if (watch)
        ckv_watch_close(watch);
    if (lease)
        ckv_lease_free(lease);
    lease_watch_free(&lw);
    return *rc != 0 || d->ttl_ns == 0;
}

/*
 * lease_expiry: how long after its holder dies a watcher hears EXPIRED for each key.
 * One watcher (this process) watches /bench/; a holder grants a lease of A.ttl_ms and
 * attaches A.n keys; once the watcher has all the PUTs, and the keepalive has run for one
 * TTL plus a random part of its cycle (so the death falls anywhere in it), the holder
 * dies: on NATS it is a process of its own, killed with SIGKILL; on mem:// (one process)
 * it calls ckv_lease_abandon, which stops the keepalive as a death does. The kill is
 * stamped just before kill()/abandon, in this process, on the same CLOCK_MONOTONIC as the
 * events. A.rounds deaths, one after another. Result: p50/p99 of kill-to-EXPIRED over
 * every key of every death (delays_ms lists each, for the harness to pool over
 * repetitions), the last EXPIRED of each death minus the TTL, and each key's EXPIRED
 * after its own last write (the TTL plus the backend's lag).
 */
static int run_lease_expiry(void) {
    long total = A.n * A.rounds;
    uint64_t *delays = malloc(sizeof(uint64_t) * (size_t)total);
    uint64_t *after = malloc(sizeof(uint64_t) * (size_t)total);
    lease_death *deaths = calloc((size_t)A.rounds, sizeof(lease_death));
    srand48((long)(bench_now_ns() ^ (uint64_t)getpid()));
    uint64_t elapsed = 0;
    for (long r = 0; r < A.rounds; r++) {
        deaths[r].delays = delays + r * A.n;
        deaths[r].after = after + r * A.n;
        int rc = 0;
        if (lease_expiry_round(&deaths[r], &rc))
            return rc;
        elapsed += deaths[r].last;
    }
    char *extra = NULL;
    size_t extra_len = 0;
    FILE *f = open_memstream(&extra, &extra_len);
    uint64_t worst = 0;
    for (long r = 0; r < A.rounds; r++)
        if (deaths[r].last > worst)
            worst = deaths[r].last;
    fprintf(f,
            "\"kill\": \"%s\", \"rounds\": %ld, \"ttl_ms\": %.0f, \"last_ms\": %.1f, "
            "\"last_minus_ttl_ms\": %.1f",
            strncmp(A.url, "nats:", 5) == 0 ? "SIGKILL" : "abandon", A.rounds,
            (double)deaths[0].ttl_ns / 1e6, (double)worst / 1e6,
            ((double)worst - (double)deaths[0].ttl_ns) / 1e6);
    fprintf(f, ", \"last_minus_ttl_rounds_ms\": [");
    for (long r = 0; r < A.rounds; r++)
        fprintf(f, "%s%.1f", r ? ", " : "",
                ((double)deaths[r].last - (double)deaths[r].ttl_ns) / 1e6);
    fprintf(f, "], \"since_write_rounds_ms\": [");
    for (long r = 0; r < A.rounds; r++)
        fprintf(f, "%s%.1f", r ? ", " : "", (double)deaths[r].since_write / 1e6);
    fprintf(f, "]");
    json_ms_array(f, "delays_ms", delays, total);
    json_ms_array(f, "after_write_ms", after, total);
    fprintf(f, ", \"after_write_p50_ms\": %.1f, \"after_write_p99_ms\": %.1f",
            pct_ms(after, total, 50), pct_ms(after, total, 99));
    fclose(f);
    bench_report(DRIVER, &A, total, elapsed, delays, total, extra);
    free(extra);
    free(delays);
    free(after);
    free(deaths);
    return 0;
}

/*
 * lease_keepalive: what keeping A.n keys alive costs. Grants one lease of A.ttl_ms,
 * attaches A.n keys, then counts the keepalive's quiet rewrites over a window of three
 * TTLs with a watch that sets quiet_writes. The rate is taken per key, from its first to
 * its last rewrite in the window (sum over keys of rewrites-1 / that span), so it does not
 * depend on where the window cuts the keepalive cycle; p50/p99 are the gaps between a
 * key's consecutive rewrites. Also: the store's revisions over the window (every write,
 * the lease record's renewals included; on mem:// a renewal is no write), and keys x 3 /
 * TTL, the rate a renewal at exactly a third of the TTL would make.
 */
static int run_lease_keepalive(void) {
    lease_watch lw;
    lease_watch_init(&lw, A.n);
    ckv_watch *watch = lease_watch_start(&lw);
    ckv_lease *lease = NULL;
    uint64_t ttl = grant_and_attach(&lease);
    if (lease_wait(&lw, &lw.puts, A.n, 60000, "attach PUTs")) {
        ckv_watch_close(watch);
        return 1;
    }
    ckv_error *err = NULL;
    uint64_t rev0 = 0, rev1 = 0;
    pthread_mutex_lock(&lw.mu);
    lw.win_from = bench_now_ns();
    pthread_mutex_unlock(&lw.mu);
    check(ckv_last_revision(STORE, &rev0, &err), err, "last revision");
    uint64_t rev_from = bench_now_ns();
    sleep_until(lw.win_from + 3 * ttl * 1000000ull);
    uint64_t rev_to = bench_now_ns();
    check(ckv_last_revision(STORE, &rev1, &err), err, "last revision");
    pthread_mutex_lock(&lw.mu);
    lw.win_to = bench_now_ns();
    int canceled = lw.canceled;
    pthread_mutex_unlock(&lw.mu);
    ckv_watch_close(watch); /* no callback runs after this returns */
    if (canceled)
        return bench_fail(DRIVER, &A, "the watch ended during the window: %s", lw.cancel);
    if (lw.unexpected)
        return bench_fail(DRIVER, &A, "%ld DELETE/PURGE events while the lease was held",
                          lw.unexpected);

    double rate = 0;
    long writes = 0, keys_rated = 0;
    for (long k = 0; k < A.n; k++) {
        writes += lw.win_count[k];
        if (lw.win_count[k] >= 2) {
            rate += (double)(lw.win_count[k] - 1) / ((double)(lw.win_last[k] - lw.win_first[k]) / 1e9);
            keys_rated++;
        }
    }
    if (keys_rated == 0)
        return bench_fail(DRIVER, &A, "no key was rewritten twice in %llu ms",
                          (unsigned long long)(3 * ttl));
    double window_s = (double)(lw.win_to - lw.win_from) / 1e9;
    char extra[512];
    snprintf(extra, sizeof extra,
             "\"ttl_ms\": %llu, \"window_ms\": %.0f, \"keys_rated\": %ld, "
             "\"keepalive_writes_per_s\": %.1f, \"writes_per_s_per_1000_keys\": %.1f, "
             "\"keys_x3_per_ttl\": %.1f, \"revisions_per_s\": %.1f",
             (unsigned long long)ttl, window_s * 1000, keys_rated, rate,
             rate * 1000.0 / (double)A.n, (double)A.n * 3.0 / ((double)ttl / 1000.0),
             (double)(rev1 - rev0) / ((double)(rev_to - rev_from) / 1e9));
    bench_report(DRIVER, &A, writes, lw.win_to - lw.win_from, lw.gaps, lw.gap_count, extra);
    /* closing the store revokes the lease (DELETE of every key) */
    ckv_lease_free(lease);
    lease_watch_free(&lw);
    return 0;
}

static const bench_workload WORKLOADS[] = {
    {"put", run_put}, {"get", run_get}, {"update", run_update},
    {"put_concurrent", run_put_concurrent}, {"watch_latency", run_watch_latency},
    {"watch_fanout", run_watch_fanout}, {"dispatch", run_dispatch},
    {"lease_expiry", run_lease_expiry}, {"lease_keepalive", run_lease_keepalive},
    {"lease_holder", run_lease_holder}, {NULL, NULL},
};

static int open_store(void) {
    ckv_error *err = NULL;
    ckv_status s;
    if (strncmp(A.url, "nats://", 7) == 0) {
        char json[1024];
        /* The lease workloads lower the delete markers' life to 1 s, the least NATS takes,
         * so a lease is granted the TTL asked for down to 1 s (with the default 5 s, a
         * bucket that keeps history raises a 2 s lease to 5 s). */
        int leases = strncmp(A.workload, "lease_", 6) == 0;
        snprintf(json, sizeof json,
                 "{\"url\": \"%s\", \"bucket\": \"%s\", \"history\": 16, "
                 "\"storage\": \"file\"%s}",
                 A.url, A.bucket, leases ? ", \"marker_ttl_ms\": 1000" : "");
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
    ARGV0 = argv[0];
    const bench_workload *workload = bench_find(WORKLOADS, &A);
    if (workload == NULL)
        return bench_unavailable(DRIVER, &A, "no %s workload for coordkv", A.workload);
    if (open_store() != 0)
        return 0;
    int rc = workload->run();
    ckv_close(STORE);
    return rc;
}
