/*
 * ckv_test.h — the little harness every C/C++ test under tests/c includes.
 *
 * Each test is a plain program, written the way a user would call coordkv. run.sh
 * starts it as   <program> <store-url> <bucket-prefix> [extra args]
 * once per backend (mem://, and the NATS server of COORDKV_TEST_NATS_URL when set).
 * test_open_store() turns that into an ckv_open_config JSON with a bucket name nobody
 * else uses, so tests never see each other's keys, on NATS as on mem://.
 *
 * Checks do not stop the program: a failing CHECK prints file:line and the expression,
 * and test_finish() turns the count into the exit code. Functions that report errors
 * use a local `ckv_error *err = NULL;` by convention, so CHECK_OK can print the
 * library's message when a call fails unexpectedly.
 *
 * Markers run.sh reads from a test's source (one per line, anywhere in the file):
 *   ckv-test: mem-only                 run on mem:// only (even when NATS is configured)
 *   ckv-test-args: <args>              extra arguments for the normal run
 *   ckv-test-valgrind-args: <args>     extra arguments under valgrind (default: as above)
 */
#ifndef CKV_TEST_H
#define CKV_TEST_H

#include "coordkv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated literal as the (pointer, length) pair the API takes. */
#define KEY(s) (s), strlen(s)
#define VAL(s) (const uint8_t *)(s), strlen(s)

static int ckv_test_checks;
static int ckv_test_failures;
static const char *ckv_test_program = "test";
static const char *ckv_test_url = "mem://";
static const char *ckv_test_bucket_prefix = "ctest";
static int ckv_test_bucket_counter;

static inline int ckv_test_check(int ok, const char *file, int line, const char *what) {
    ckv_test_checks++;
    if (!ok) {
        ckv_test_failures++;
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
    }
    return ok;
}

#define CHECK(cond) ckv_test_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

/* A call that must succeed; on failure its status and message are printed. */
static inline int ckv_test_ok(ckv_status got, ckv_error **err, const char *file, int line,
                              const char *what) {
    int ok = got == CKV_OK && *err == NULL;
    ckv_test_check(ok, file, line, what);
    if (!ok) {
        fprintf(stderr, "    returned %s: %s\n", ckv_status_name(got),
                *err ? ckv_error_message(*err) : "(no error object)");
    }
    ckv_error_free(*err);
    *err = NULL;
    return ok;
}

#define CHECK_OK(call) ckv_test_ok((call), &err, __FILE__, __LINE__, #call)

/*
 * A call that must fail with `want`: the returned status, the error object's status and
 * the message prefix (the status name) must all agree. The error is left in *err for the
 * caller to inspect; free it with ckv_error_free (CHECK_FAILS does that for you).
 */
static inline int ckv_test_error(ckv_status want, ckv_status got, const ckv_error *err,
                                 const char *file, int line, const char *what) {
    const char *name = ckv_status_name(want);
    int ok = got == want && err != NULL && ckv_error_status(err) == want &&
             strncmp(ckv_error_message(err), name, strlen(name)) == 0;
    ckv_test_check(ok, file, line, what);
    if (!ok) {
        fprintf(stderr, "    wanted %s, returned %s: %s\n", name, ckv_status_name(got),
                err ? ckv_error_message(err) : "(no error object)");
    }
    return ok;
}

#define CHECK_ERROR(want, status, err_ptr) \
    ckv_test_error((want), (status), (err_ptr), __FILE__, __LINE__, #status " is " #want)

#define CHECK_FAILS(want, call)                                                          \
    do {                                                                                 \
        ckv_status ckv_test_status_ = (call);                                            \
        ckv_test_error((want), ckv_test_status_, err, __FILE__, __LINE__, #call " -> " #want); \
        ckv_error_free(err);                                                             \
        err = NULL;                                                                      \
    } while (0)

/* Whether an entry's value is exactly the bytes of `text`. */
static inline int entry_value_is(const ckv_entry *entry, const char *text) {
    size_t len = 0;
    const uint8_t *value = ckv_entry_value(entry, &len);
    return value != NULL && len == strlen(text) && memcmp(value, text, len) == 0;
}

/* Whether the key at `index` of a key list is exactly `text`. */
static inline int key_at_is(const ckv_key_list *keys, size_t index, const char *text) {
    size_t len = 0;
    const char *key = ckv_key_list_get(keys, index, &len);
    return key != NULL && len == strlen(text) && memcmp(key, text, len) == 0;
}

static inline void test_init(int argc, char **argv) {
    ckv_test_program = argv[0];
    if (argc > 1) ckv_test_url = argv[1];
    if (argc > 2) ckv_test_bucket_prefix = argv[2];
}

static inline int test_on_mem(void) { return strncmp(ckv_test_url, "mem:", 4) == 0; }

/*
 * Opens a store on this run's backend with a bucket of its own. `extra_fields` is
 * either "" or more JSON members starting with a comma, e.g. ",\"max_value_size\":16".
 * A test cannot go on without its store, so failing to open ends the program.
 */
static inline ckv_store *test_open_store(const char *extra_fields) {
    char json[1024];
    ckv_store *store = NULL;
    ckv_error *err = NULL;
    ckv_status status;
    snprintf(json, sizeof json, "{\"url\":\"%s\",\"bucket\":\"%s_%d\"%s}", ckv_test_url,
             ckv_test_bucket_prefix, ++ckv_test_bucket_counter, extra_fields);
    status = ckv_open_config(json, &store, &err);
    if (status != CKV_OK) {
        fprintf(stderr, "%s: cannot open %s: %s\n", ckv_test_program, json,
                ckv_error_message(err));
        ckv_error_free(err);
        exit(2);
    }
    return store;
}

#define RUN(test_fn)                                                   \
    do {                                                               \
        printf("%s: %s on %s\n", ckv_test_program, #test_fn, ckv_test_url); \
        fflush(stdout);                                                \
        test_fn();                                                     \
    } while (0)

/* Prints the tally and gives main its exit code. */
static inline int test_finish(void) {
    printf("%s: %d checks, %d failed\n", ckv_test_program, ckv_test_checks,
           ckv_test_failures);
    return ckv_test_failures == 0 ? 0 : 1;
}

#endif /* CKV_TEST_H */
