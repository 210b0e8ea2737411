/*
 * test_callback_close.c — closing watches and stores from callbacks, and what a close
 * promises about the callback (issue 9, findings 1, 2, 4 and 5).
 *
 * The contract (include/coordkv.h, ckv_watch_close and ckv_close): after a close returns
 * on a thread that is not a delivery thread, the callback is not running and is never
 * called again, also when a callback closed the handle before; a close from inside a
 * callback returns at once, and the closed watch's callback is not called after the
 * current one returns.
 *
 *  - mutual_close: two callbacks close each other's watch (this deadlocked both
 *    delivery threads for good).
 *  - self_close_then_owner_close: a callback closes its own watch and keeps using its
 *    user data; the owner's close must wait for it before the owner frees the data
 *    (under ASan the old behaviour was a heap-use-after-free).
 *  - callback_closes_store: the same with ckv_close on the store.
 *  - handle_kinds: a watch handle is not a store handle; stale handles stay closed.
 *  - thread_start_failure (not under ASan/valgrind): with no address space left for a
 *    thread, opening a callback watch fails UNAVAILABLE, leaves nothing registered and
 *    prints nothing; writes still succeed.
 *
 * A watchdog (alarm) turns a hang into a failure. CKV_TEST_ROUNDS sets the round count
 * (default small for CI); CKV_TEST_HANDLE_CYCLES=16777216 runs the full wrap-around
 * reproduction of finding 5 (slow).
 *
 * ckv-test: mem-only
 * ckv-test-args: full
 * ckv-test-valgrind-args: novg
 * ckv-test-asan-args: asan
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "ckv_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CKV_UNDER_ASAN 1
#else
#define CKV_UNDER_ASAN 0
#endif

static int rounds = 5;

static void sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void wait_for(atomic_int *flag, int value) {
    while (atomic_load(flag) < value) sleep_ms(1);
}

/* A callback watch on `key`, its handle in *watch_out before the one write to `key` that
 * wakes the callback (which may read *watch_out). */
static void watch_then_put(ckv_store *store, const char *key, ckv_watch_fn callback,
                           void *user_data, ckv_watch **watch_out) {
    ckv_error *err = NULL;
    CHECK_OK(ckv_watch_callback(store, KEY(key), NULL, callback, user_data, watch_out, &err));
    CHECK_OK(ckv_put(store, KEY(key), VAL("v"), NULL, &err));
}

/* ---- 1: two callbacks close each other's watch ---- */

struct mutual {
    ckv_watch *other;
    atomic_int called;
    atomic_int returned;
};

static void close_other(void *user_data, const ckv_event *event) {
    struct mutual *m = (struct mutual *)user_data;
    if (ckv_event_kind(event) != CKV_EVENT_PUT) return;
    atomic_fetch_add(&m->called, 1);
    sleep_ms(20);
    ckv_watch_close(m->other);
    atomic_fetch_add(&m->returned, 1);
}

static void mutual_close(void) {
    int round;
    for (round = 0; round < rounds; round++) {
        ckv_error *err = NULL;
        ckv_store *store = test_open_store("");
        struct mutual *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
        ckv_watch *wa = NULL, *wb = NULL;
        CHECK_OK(ckv_watch_callback(store, KEY("/k"), NULL, close_other, a, &wa, &err));
        CHECK_OK(ckv_watch_callback(store, KEY("/k"), NULL, close_other, b, &wb, &err));
        a->other = wb;
        b->other = wa;
        CHECK_OK(ckv_put(store, KEY("/k"), VAL("v"), NULL, &err));
        /* At least one callback runs and closes the other; both must return. */
        while (atomic_load(&a->returned) + atomic_load(&b->returned) < 1) sleep_ms(1);
        ckv_watch_close(wa);
        ckv_watch_close(wb);
        /* Both closes returned: no callback is running, so both tallies are final. */
        CHECK(atomic_load(&a->called) == atomic_load(&a->returned));
        CHECK(atomic_load(&b->called) == atomic_load(&b->returned));
        CHECK(atomic_load(&a->called) <= 1 && atomic_load(&b->called) <= 1);
        free(a);
        free(b);
        /* The delivery threads are free again: a new callback watch still works. */
        {
            struct mutual *c = calloc(1, sizeof *c);
            ckv_watch *wc = NULL;
            watch_then_put(store, "/k2", close_other, c, &wc); /* c->other stays NULL */
            wait_for(&c->returned, 1);
            ckv_watch_close(wc);
            free(c);
        }
        ckv_close(store);
    }
}

/* ---- 2: a close returns only when the callback is done with its user data ---- */

struct victim {
    ckv_watch *self;
    ckv_store *store; /* when set, the callback closes the store, else its own watch */
    atomic_int started;
    atomic_int finished;
    char scratch[64];
};

static void close_then_touch(void *user_data, const ckv_event *event) {
    struct victim *v = (struct victim *)user_data;
    if (ckv_event_kind(event) != CKV_EVENT_PUT) return;
    atomic_store(&v->started, 1);
    /* Either close returns at once: we are a delivery thread. */
    if (v->store != NULL) {
        ckv_close(v->store);
    } else {
        ckv_watch_close(v->self);
    }
    sleep_ms(10);
    memset(v->scratch, 'x', sizeof v->scratch); /* user data still in use */
    atomic_store(&v->finished, 1);
}

static void self_close_then_owner_close(void) {
    int round;
    ckv_store *store = test_open_store("");
    for (round = 0; round < rounds; round++) {
        ckv_error *err = NULL;
        struct victim *v = calloc(1, sizeof *v);
        ckv_watch *w;
        ckv_event *event = NULL;
        watch_then_put(store, "/uaf", close_then_touch, v, &v->self);
        w = v->self;
        wait_for(&v->started, 1);
        ckv_watch_close(w);
        if (!CHECK(atomic_load(&v->finished) == 1)) break;
        /* Closed for good: the handle is refused, never reused for another watch. */
        CHECK_FAILS(CKV_CLOSED, ckv_watch_next(w, 0, &event, &err));
        free(v); /* what the header allows once ckv_watch_close returned */
    }
    ckv_close(store);
}

static void callback_closes_store(void) {
    int round;
    for (round = 0; round < rounds; round++) {
        ckv_error *err = NULL;
        struct victim *v = calloc(1, sizeof *v);
        ckv_watch *w = NULL;
        uint64_t rev = 0;
        v->store = test_open_store("");
        watch_then_put(v->store, "/s", close_then_touch, v, &w);
        wait_for(&v->started, 1);
        ckv_close(v->store);
        if (!CHECK(atomic_load(&v->finished) == 1)) break;
        CHECK_FAILS(CKV_CLOSED, ckv_put(v->store, KEY("/s"), VAL("v"), &rev, &err));
        ckv_watch_close(w);
        free(v);
    }
}

/* ---- 5: handle kinds and stale handles ---- */

static void handle_kinds(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_watch *w = NULL, *w2 = NULL;
    ckv_event *event = NULL;
    uint64_t rev = 0;
    const char *cycles_env = getenv("CKV_TEST_HANDLE_CYCLES");
    long cycles = cycles_env ? atol(cycles_env) : 0, i;

    CHECK_OK(ckv_watch_open(store, KEY("/h"), NULL, &w, &err));
    CHECK((uintptr_t)w != (uintptr_t)store);
    /* A watch handle passed as a store is refused, and never closes a store. */
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put((ckv_store *)w, KEY("/h"), VAL("v"), &rev, &err));
    ckv_close((ckv_store *)w);
    ckv_watch_close((ckv_watch *)store);
    CHECK_OK(ckv_put(store, KEY("/h"), VAL("v"), &rev, &err));
    CHECK_OK(ckv_watch_next(w, 1000, &event, &err));
    ckv_event_free(event);
    event = NULL;
    /* Garbage is INVALID_ARGUMENT and not blamed on fork(). */
    {
        ckv_status status = ckv_put((ckv_store *)(uintptr_t)0xFFFFFFFFFFFFFFF0ull, KEY("/h"),
                                    VAL("v"), &rev, &err);
        CHECK_ERROR(CKV_INVALID_ARGUMENT, status, err);
        if (err) CHECK(strstr(ckv_error_message(err), "fork") == NULL);
        ckv_error_free(err);
        err = NULL;
    }
    /* A closed handle stays closed while its slot is reused. */
    ckv_watch_close(w);
    for (i = 0; i < 1000 + cycles; i++) {
        CHECK_OK(ckv_watch_open(store, KEY("/h"), NULL, &w2, &err));
        if (w2 == w) {
            CHECK(!"a closed watch handle came back as a new watch");
            break;
        }
        ckv_watch_close(w2);
    }
    CHECK_FAILS(CKV_CLOSED, ckv_watch_next(w, 0, &event, &err));
    ckv_close(store);
}

/* ---- 4: a thread that cannot be started ---- */

static void thread_start_failure_child(void) {
    ckv_error *err = NULL;
    ckv_store *store = NULL, *limited = NULL;
    ckv_watch *w = NULL, *poll = NULL;
    ckv_watch_options opts;
    struct rlimit limit;
    unsigned long pages = 0;
    uint64_t rev = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    CHECK_OK(ckv_open("mem://", &store, &err));
    CHECK_OK(ckv_open_config("{\"max_watchers\":1}", &limited, &err));
    CHECK_OK(ckv_put(store, KEY("/t"), VAL("before"), &rev, &err));
    if (!CHECK(statm != NULL && fscanf(statm, "%lu", &pages) == 1)) _exit(3);
    fclose(statm);
    /* Room for small allocations, none for a thread stack. */
    limit.rlim_cur = limit.rlim_max = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (1 << 20);
    CHECK(setrlimit(RLIMIT_AS, &limit) == 0);
    CHECK_FAILS(CKV_UNAVAILABLE,
                ckv_watch_callback(store, KEY("/t"), NULL, close_other, NULL, &w, &err));
    CHECK(w == NULL);
    CHECK_OK(ckv_put(store, KEY("/t"), VAL("after"), &rev, &err));
    ckv_watch_options_init(&opts);
    opts.progress_interval_ms = 100;
    CHECK_FAILS(CKV_UNAVAILABLE, ckv_watch_open(limited, KEY("/t"), &opts, &w, &err));
    /* Nothing was left registered: the only watcher slot is still free. */
    CHECK_OK(ckv_watch_open(limited, KEY("/t"), NULL, &poll, &err));
    ckv_watch_close(poll);
    ckv_close(limited);
    ckv_close(store);
    fflush(stdout);
    _exit(test_finish());
}

static void thread_start_failure(void) {
    char path[] = "/tmp/ckv_stderr_XXXXXX";
    int fd = mkstemp(path), wstatus = 0;
    struct stat st;
    pid_t pid;
    CHECK(fd >= 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        alarm(60);
        thread_start_failure_child();
    }
    CHECK(waitpid(pid, &wstatus, 0) == pid);
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    /* Nothing on the host's stderr but our own CHECK lines (and no Rust panic text). */
    CHECK(fstat(fd, &st) == 0);
    if (!CHECK(st.st_size == 0)) {
        char buf[512];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            fprintf(stderr, "    child stderr: %s\n", buf);
        }
    }
    close(fd);
    unlink(path);
}

int main(int argc, char **argv) {
    const char *env = getenv("CKV_TEST_ROUNDS");
    int full = argc > 3 && strcmp(argv[3], "full") == 0;
    test_init(argc, argv);
    if (env) rounds = atoi(env);
    alarm((unsigned)(120 + rounds / 2)); /* a hang fails instead of stalling CI */
    /* First, while this process has started no thread: a child would otherwise reuse
     * the stacks glibc keeps from the parent's threads and need no new address space. */
    if (full && !CKV_UNDER_ASAN) RUN(thread_start_failure);
    RUN(mutual_close);
    RUN(self_close_then_owner_close);
    RUN(callback_closes_store);
    RUN(handle_kinds);
    return test_finish();
}
