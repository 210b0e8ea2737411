/*
 * test_rmw_threads.c — many threads, one handle, one counter.
 *
 * 8 pthreads each run ckv_read_modify_write increments of the same key through the same
 * store handle. Every increment that returns CKV_OK must be counted exactly once, so the
 * final decimal value is exactly threads x increments: a lost update or a double write
 * shows up as a wrong total. The per-thread count comes from argv so run.sh can use a
 * smaller one under valgrind, which serialises threads and is slow.
 *
 * ckv-test: mem-only
 * ckv-test-args: 10000
 * ckv-test-valgrind-args: 500
 */
#include "ckv_test.h"

#include <pthread.h>

#define THREADS 8

struct worker {
    ckv_store *store;
    long increments;
    long succeeded;
    long callback_calls;
    ckv_status first_failure;
};

static ckv_status increment(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    struct worker *worker = (struct worker *)user_data;
    char text[32];
    long value = 0;
    worker->callback_calls++;
    if (current != NULL) {
        size_t len = 0;
        const uint8_t *bytes = ckv_entry_value(current, &len);
        if (len == 0 || len >= sizeof text) return CKV_INTERNAL;
        memcpy(text, bytes, len);
        text[len] = '\0';
        value = strtol(text, NULL, 10);
    }
    snprintf(text, sizeof text, "%ld", value + 1);
    return ckv_rmw_set_value(result, VAL(text));
}

static void *run_worker(void *arg) {
    struct worker *worker = (struct worker *)arg;
    long i;
    for (i = 0; i < worker->increments; i++) {
        ckv_error *err = NULL;
        ckv_status status =
            ckv_read_modify_write(worker->store, KEY("/counter"), increment, worker, NULL, &err);
        if (status == CKV_OK) {
            worker->succeeded++;
        } else if (worker->first_failure == CKV_OK) {
            worker->first_failure = status;
            fprintf(stderr, "    increment failed: %s\n", ckv_error_message(err));
        }
        ckv_error_free(err);
    }
    return NULL;
}

int main(int argc, char **argv) {
    ckv_error *err = NULL;
    ckv_store *store;
    ckv_entry *entry = NULL;
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    long per_thread = argc > 3 ? strtol(argv[3], NULL, 10) : 10000;
    long succeeded = 0, calls = 0;
    char want[32];
    int i;

    test_init(argc, argv);
    CHECK(per_thread > 0);
    store = test_open_store("");
    printf("%s: %d threads x %ld increments on %s\n", ckv_test_program, THREADS, per_thread,
           ckv_test_url);

    for (i = 0; i < THREADS; i++) {
        workers[i].store = store;
        workers[i].increments = per_thread;
        workers[i].succeeded = 0;
        workers[i].callback_calls = 0;
        workers[i].first_failure = CKV_OK;
        CHECK(pthread_create(&threads[i], NULL, run_worker, &workers[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].first_failure == CKV_OK);
        succeeded += workers[i].succeeded;
        calls += workers[i].callback_calls;
    }
    CHECK(succeeded == THREADS * per_thread);

    snprintf(want, sizeof want, "%ld", THREADS * per_thread);
    CHECK_OK(ckv_get(store, KEY("/counter"), &entry, &err));
    if (!CHECK(entry_value_is(entry, want))) {
        size_t len = 0;
        const uint8_t *value = ckv_entry_value(entry, &len);
        fprintf(stderr, "    counter is %.*s, want %s\n", (int)len, (const char *)value, want);
    }
    ckv_entry_free(entry);
    /* Contention shows up as retries, never as lost increments. */
    printf("%s: %ld callback calls for %ld increments\n", ckv_test_program, calls, succeeded);
    ckv_close(store);
    return test_finish();
}
