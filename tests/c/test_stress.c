/*
 * test_stress.c — many threads using, closing and re-opening stores and watches at once
 * (issue 9): random writes and reads, poll watches read by several threads at once,
 * callbacks that close their own watch, other watches and stores (and then keep using
 * their user data), owners that close and free while callbacks run, and — in the plain
 * build only — fork() in the middle, each child using new stores of its own. (Under
 * valgrind a child reports the objects only other threads' stacks referenced as leaked;
 * under GCC 12's ASan a forked child can deadlock inside ASan itself.)
 *
 * Every status must be one the contract allows (a stale handle is CLOSED, never anything
 * worse); user data is freed right after the owner's close returns, so ASan or valgrind
 * reports a callback that still runs; every handle must be accounted for at the end
 * (ckv_open_handles reports none left). A watchdog alarm turns a hang into a failure,
 * and a child that hangs is killed by its own alarm and counted.
 *
 * Arguments after the URL and bucket prefix: [seconds] [forks|noforks].
 * CKV_STRESS_SECONDS overrides the duration.
 *
 * ckv-test: mem-only
 * ckv-test-args: 3 forks
 * ckv-test-valgrind-args: 2 noforks
 * ckv-test-asan-args: 3 noforks
 */
#define _POSIX_C_SOURCE 200809L
#include "ckv_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 6
#define STORES 4
#define WATCHES 16

struct cb {
    atomic_long calls;
    unsigned seed;
    char scratch[32];
};

struct watch_slot {
    ckv_watch *watch;
    struct cb *data; /* NULL for a poll watch */
};

static pthread_mutex_t table = PTHREAD_MUTEX_INITIALIZER;
static ckv_store *stores[STORES];
static struct watch_slot watches[WATCHES];
static atomic_int stop;
static atomic_long ops, bad, callbacks, forks_done, hung_children, failed_children;
static int with_forks;

static unsigned next_rand(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void expect(ckv_status status, ckv_status also, const char *what) {
    if (status != CKV_OK && status != CKV_CLOSED && status != also) {
        atomic_fetch_add(&bad, 1);
        fprintf(stderr, "unexpected %s from %s\n", ckv_status_name(status), what);
    }
}

/* A copy of a random handle; it may be closed by the time it is used, never reused. */
static ckv_store *any_store(unsigned *seed) {
    ckv_store *s;
    pthread_mutex_lock(&table);
    s = stores[next_rand(seed) % STORES];
    pthread_mutex_unlock(&table);
    return s;
}

static ckv_watch *any_watch(unsigned *seed) {
    ckv_watch *w;
    pthread_mutex_lock(&table);
    w = watches[next_rand(seed) % WATCHES].watch;
    pthread_mutex_unlock(&table);
    return w;
}

static void on_event(void *user_data, const ckv_event *event) {
    struct cb *c = (struct cb *)user_data;
    unsigned r = next_rand(&c->seed) % 16;
    (void)event;
    atomic_fetch_add(&callbacks, 1);
    if (r == 0) ckv_watch_close(any_watch(&c->seed)); /* maybe its own, maybe another */
    if (r == 1) ckv_close(any_store(&c->seed));
    if (r == 2) ckv_put(any_store(&c->seed), KEY("/s/from-callback"), VAL("cb"), NULL, NULL);
    /* Still using the user data after those closes: the owner must not have freed it. */
    memset(c->scratch, (int)r, sizeof c->scratch);
    atomic_fetch_add(&c->calls, 1);
}

static void close_watch_slot(int i) {
    struct watch_slot slot;
    pthread_mutex_lock(&table);
    slot = watches[i];
    watches[i].watch = NULL;
    watches[i].data = NULL;
    pthread_mutex_unlock(&table);
    ckv_watch_close(slot.watch); /* from a non-delivery thread: the callback is done */
    free(slot.data);
}

static void close_store_slot(int i) {
    ckv_store *s;
    pthread_mutex_lock(&table);
    s = stores[i];
    stores[i] = NULL;
    pthread_mutex_unlock(&table);
    ckv_close(s);
}

static int child_work(void) {
    ckv_store *s = NULL;
    ckv_watch *w = NULL;
    ckv_entry *entry = NULL;
    struct cb *c = calloc(1, sizeof *c);
    int ok;
    alarm(20);
    c->seed = 7;
    ok = ckv_open("mem://", &s, NULL) == CKV_OK &&
         ckv_watch_callback(s, KEY("/child"), NULL, on_event, c, &w, NULL) == CKV_OK &&
         ckv_put(s, KEY("/child"), VAL("x"), NULL, NULL) == CKV_OK &&
         ckv_get(s, KEY("/child"), &entry, NULL) == CKV_OK;
    ckv_entry_free(entry);
    ckv_watch_close(w);
    ckv_close(s);
    free(c);
    return ok ? 0 : 1;
}

static void do_fork(void) {
    int wstatus = 0;
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) _exit(child_work());
    if (pid < 0) return;
    waitpid(pid, &wstatus, 0);
    atomic_fetch_add(&forks_done, 1);
    if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGALRM) {
        atomic_fetch_add(&hung_children, 1);
    } else if (!(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
        atomic_fetch_add(&failed_children, 1);
    }
}

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    while (!atomic_load(&stop)) {
        unsigned r = next_rand(&seed) % 100;
        int i = (int)(next_rand(&seed) % WATCHES), si = (int)(next_rand(&seed) % STORES);
        char key[16];
        snprintf(key, sizeof key, "/s/%u", next_rand(&seed) % 8);
        atomic_fetch_add(&ops, 1);
        if (r < 4) { /* open a store into an empty slot */
            ckv_store *s = NULL;
            if (ckv_open("mem://", &s, NULL) != CKV_OK) {
                atomic_fetch_add(&bad, 1);
                continue;
            }
            pthread_mutex_lock(&table);
            if (stores[si] == NULL) {
                stores[si] = s;
                s = NULL;
            }
            pthread_mutex_unlock(&table);
            ckv_close(s);
        } else if (r < 7) {
            close_store_slot(si);
        } else if (r < 40) {
            expect(ckv_put(any_store(&seed), KEY(key), VAL("v"), NULL, NULL), CKV_INVALID_ARGUMENT,
                   "put");
        } else if (r < 50) {
            ckv_entry *entry = NULL;
            ckv_status status = ckv_get(any_store(&seed), KEY(key), &entry, NULL);
            if (status == CKV_OK) ckv_entry_free(entry);
            expect(status == CKV_NOT_FOUND ? CKV_OK : status, CKV_INVALID_ARGUMENT, "get");
        } else if (r < 60) { /* open a watch, polled or with a callback */
            ckv_store *s = any_store(&seed);
            ckv_watch *w = NULL;
            struct cb *c = NULL;
            ckv_status status;
            ckv_watch_options opts;
            ckv_watch_options_init(&opts);
            opts.prefix = true;
            if (r < 55) {
                c = calloc(1, sizeof *c);
                c->seed = next_rand(&seed) | 1;
                status = ckv_watch_callback(s, KEY("/s/"), &opts, on_event, c, &w, NULL);
            } else {
                status = ckv_watch_open(s, KEY("/s/"), &opts, &w, NULL);
            }
            /* INVALID_ARGUMENT: an empty store slot (NULL). */
            expect(status, s ? CKV_OK : CKV_INVALID_ARGUMENT, "watch open");
            if (status != CKV_OK) {
                free(c);
                continue;
            }
            pthread_mutex_lock(&table);
            if (watches[i].watch == NULL) {
                watches[i].watch = w;
                watches[i].data = c;
                w = NULL;
                c = NULL;
            }
            pthread_mutex_unlock(&table);
            ckv_watch_close(w);
            free(c);
        } else if (r < 68) {
            close_watch_slot(i);
        } else if (r < 98) { /* several threads reading the same poll watches */
            ckv_event *event = NULL;
            ckv_status status = ckv_watch_next(any_watch(&seed), (int64_t)(r % 3), &event, NULL);
            if (status == CKV_OK) ckv_event_free(event);
            /* INVALID_ARGUMENT: a callback watch, or an empty slot (NULL). */
            if (status != CKV_TIMEOUT) expect(status, CKV_INVALID_ARGUMENT, "watch next");
        } else if (with_forks && (uintptr_t)arg == 0) {
            do_fork();
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t threads[WORKERS];
    const char *env = getenv("CKV_STRESS_SECONDS");
    double seconds = argc > 3 ? atof(argv[3]) : 3;
    size_t open_stores = 1, open_watches = 1;
    int i;
    struct timespec start, now;
    test_init(argc, argv);
    if (env) seconds = atof(env);
    with_forks = argc > 4 && strcmp(argv[4], "forks") == 0;
    alarm((unsigned)(seconds * 10 + 120));
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (i = 0; i < WORKERS; i++) {
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    }
    do {
        struct timespec t = {0, 50000000L};
        nanosleep(&t, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - start.tv_sec) +
                 (double)(now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
    atomic_store(&stop, 1);
    for (i = 0; i < WORKERS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    for (i = 0; i < WATCHES; i++) close_watch_slot(i);
    for (i = 0; i < STORES; i++) close_store_slot(i);
    ckv_open_handles(&open_stores, &open_watches);
    printf("stress: %.1f s, %ld ops, %ld callbacks, %ld forks (%ld hung, %ld failed), "
           "%ld unexpected statuses, %zu stores and %zu watches left open\n",
           seconds, atomic_load(&ops), atomic_load(&callbacks), atomic_load(&forks_done),
           atomic_load(&hung_children), atomic_load(&failed_children), atomic_load(&bad),
           open_stores, open_watches);
    CHECK(atomic_load(&bad) == 0);
    CHECK(atomic_load(&hung_children) == 0);
    CHECK(atomic_load(&failed_children) == 0);
    CHECK(open_stores == 0 && open_watches == 0);
    CHECK(atomic_load(&ops) > 1000);
    return test_finish();
}
