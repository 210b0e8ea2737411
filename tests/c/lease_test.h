/*
 * lease_test.h — what the C lease tests share (include it after ckv_test.h): a write
 * attached to a lease, and a lease's lost callback that records its calls:
 * how many times it ran, with which lease id and reason, and a wait for the first call
 * (ckv_lease_wait_lost may return just before the callback has run on the keepalive
 * thread). Initialize with LOST_LOG_INIT. Needs _POSIX_C_SOURCE 200809L (clock_gettime).
 */
#ifndef CKV_LEASE_TEST_H
#define CKV_LEASE_TEST_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define LOST_LOG_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ""}

struct lost_log {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int calls;
    uint64_t id;
    char reason[512];
};

static inline void on_lost(void *user_data, uint64_t lease_id, const char *reason) {
    struct lost_log *log = user_data;
    pthread_mutex_lock(&log->lock);
    log->calls++;
    log->id = lease_id;
    snprintf(log->reason, sizeof log->reason, "%s", reason ? reason : "");
    pthread_cond_broadcast(&log->changed);
    pthread_mutex_unlock(&log->lock);
}

/* The number of calls once there is at least one, or 0 after `timeout_ms`.
 * ckv_lease_wait_lost may return just before the callback has run on the keepalive
 * thread, so the callback is waited for on its own. */
static inline int wait_for_callback(struct lost_log *log, long timeout_ms) {
    struct timespec deadline;
    int calls;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&log->lock);
    while (log->calls == 0) {
        if (pthread_cond_timedwait(&log->changed, &log->lock, &deadline) == ETIMEDOUT) break;
    }
    calls = log->calls;
    pthread_mutex_unlock(&log->lock);
    return calls;
}

/* Writes "up" under `key`, attached to `lease`; the write must succeed. */
static inline void put_leased(ckv_store *store, const char *key, uint64_t lease) {
    ckv_error *err = NULL;
    ckv_write_options w;
    ckv_write_options_init(&w);
    w.lease = lease;
    uint64_t rev = 0;
    CHECK_OK(ckv_put_with(store, KEY(key), VAL("up"), &w, &rev, &err));
    CHECK(rev > 0);
}

#endif
