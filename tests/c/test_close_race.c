/*
 * test_close_race.c — ckv_close while other threads are inside calls on the same handle.
 *
 * The header promises that calls racing with ckv_close finish or fail with CKV_CLOSED,
 * and that any later use fails with CKV_CLOSED without touching freed memory. Worker
 * threads write and read through one handle in a loop; once every worker has completed
 * some calls, the main thread closes the store. Each worker must then see only CKV_OK
 * before the first CKV_CLOSED and CKV_CLOSED after it, and valgrind (run.sh) checks that
 * nothing freed was read along the way.
 */
#include "ckv_test.h"

#include <pthread.h>

#define WORKERS 4
#define CALLS_BEFORE_CLOSE 50

struct worker {
    ckv_store *store;
    int index;
    long calls;
    long after_closed; /* rounds made after the first CKV_CLOSED */
    int unexpected;    /* a status other than OK / CLOSED, or OK after CLOSED */
    ckv_status unexpected_status;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progressed = PTHREAD_COND_INITIALIZER;
static int workers_ready;

static void record(struct worker *w, ckv_status status, int *closed) {
    if (status == CKV_CLOSED) {
        *closed = 1;
    } else if (status != CKV_OK || *closed) {
        w->unexpected++;
        w->unexpected_status = status;
    }
}

static void *run_worker(void *arg) {
    struct worker *w = (struct worker *)arg;
    char key[32];
    int closed = 0, announced = 0;
    snprintf(key, sizeof key, "/race/w%d", w->index);

    /* Keep calling until the handle is closed, then a few more times to use it stale. */
    while (w->after_closed < 20) {
        ckv_entry *entry = NULL;
        ckv_error *err = NULL;
        ckv_status status = ckv_put(w->store, KEY(key), VAL("v"), NULL, &err);
        if (status != CKV_OK && err == NULL) w->unexpected++;
        ckv_error_free(err);
        record(w, status, &closed);
        status = ckv_get(w->store, KEY(key), &entry, NULL);
        if (status == CKV_OK) ckv_entry_free(entry);
        record(w, status, &closed);
        w->calls += 2;
        if (closed) w->after_closed++;
        if (!announced && w->calls >= CALLS_BEFORE_CLOSE) {
            announced = 1;
            pthread_mutex_lock(&lock);
            workers_ready++;
            pthread_cond_signal(&progressed);
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    ckv_error *err = NULL;
    ckv_store *store;
    pthread_t threads[WORKERS];
    struct worker workers[WORKERS];
    int i;

    test_init(argc, argv);
    store = test_open_store("");
    memset(workers, 0, sizeof workers);
    for (i = 0; i < WORKERS; i++) {
        workers[i].store = store;
        workers[i].index = i;
        CHECK(pthread_create(&threads[i], NULL, run_worker, &workers[i]) == 0);
    }

    pthread_mutex_lock(&lock);
    while (workers_ready < WORKERS) pthread_cond_wait(&progressed, &lock);
    pthread_mutex_unlock(&lock);
    ckv_close(store);

    for (i = 0; i < WORKERS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].calls >= CALLS_BEFORE_CLOSE);
        if (!CHECK(workers[i].unexpected == 0)) {
            fprintf(stderr, "    worker %d: %d unexpected results, last %s\n", i,
                    workers[i].unexpected, ckv_status_name(workers[i].unexpected_status));
        }
    }
    /* Closing again, from the thread that closed it, is still a no-op. */
    ckv_close(store);
    CHECK_FAILS(CKV_CLOSED, ckv_put(store, KEY("/race/after"), VAL("v"), NULL, &err));
    printf("%s: %d workers closed mid-flight on %s\n", ckv_test_program, WORKERS, ckv_test_url);
    return test_finish();
}
