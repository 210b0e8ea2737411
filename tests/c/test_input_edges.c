/*
 * test_input_edges.c — bad input at the edges of the C API (issue 9, finding 8).
 *
 * Each bad input gets a typed error with a short message that says what is wrong in
 * plain words: input is echoed at most a bounded length; an over-long key length is
 * refused before a byte is read (valgrind, run by run.sh, would report a read past the
 * caller's buffer); a start revision no write can reach, a JSON member given twice, an
 * empty server, a garbage nkey seed and an integer too large are INVALID_ARGUMENT before
 * anything connects; a garbage handle is not blamed on fork().
 *
 * ckv-test: mem-only
 */
#include "ckv_test.h"

#include <stdint.h>

/* The call must fail with INVALID_ARGUMENT; its message must be short, must contain
 * `want` (when not NULL) and must not contain `unwanted` (when not NULL). */
static void check_invalid(ckv_status status, ckv_error *err, const char *want,
                          const char *unwanted, const char *what) {
    const char *message = err ? ckv_error_message(err) : "";
    if (!CHECK(status == CKV_INVALID_ARGUMENT && err != NULL)) {
        fprintf(stderr, "    %s: returned %s: %s\n", what, ckv_status_name(status), message);
    }
    if (!CHECK(strlen(message) <= 1100)) fprintf(stderr, "    %s: %zu bytes\n", what, strlen(message));
    if (want && !CHECK(strstr(message, want) != NULL)) fprintf(stderr, "    %s: %s\n", what, message);
    if (unwanted && !CHECK(strstr(message, unwanted) == NULL)) fprintf(stderr, "    %s: %s\n", what, message);
    ckv_error_free(err);
}

static void open_config_fails(const char *json, const char *want, const char *unwanted) {
    ckv_store *store = NULL;
    ckv_error *err = NULL;
    ckv_status status = ckv_open_config(json, &store, &err);
    check_invalid(status, err, want, unwanted, json);
    CHECK(store == NULL);
}

static void huge_inputs_give_short_messages(void) {
    size_t n = 10u << 20, i;
    char *url = malloc(n + 1);
    char *json;
    ckv_store *store = NULL;
    ckv_error *err = NULL;
    ckv_status status;
    memset(url, 'u', n);
    url[n] = 0;
    status = ckv_open(url, &store, &err);
    check_invalid(status, err, "bytes", NULL, "10 MB URL");
    free(url);
    /* 100k empty servers: refused at once, with a short message. */
    n = 100000;
    json = malloc(3 * n + 32);
    {
        char *p = json;
        p += sprintf(p, "{\"servers\":[");
        for (i = 0; i < n; i++) p += sprintf(p, i ? ",\"\"" : "\"\"");
        sprintf(p, "]}");
    }
    open_config_fails(json, NULL, NULL);
    free(json);
}

static void key_length_is_checked_before_reading(void) {
    ckv_store *store = test_open_store("");
    ckv_error *err = NULL;
    char *key = malloc(2);
    ckv_entry *entry = NULL;
    uint64_t rev = 0;
    ckv_status status;
    memcpy(key, "/a", 2);
    /* The length claims a megabyte; only 2 bytes exist. */
    status = ckv_put(store, key, 1u << 20, VAL("v"), &rev, &err);
    check_invalid(status, err, "limit", NULL, "over-long key length");
    err = NULL;
    status = ckv_get(store, key, SIZE_MAX / 2, &entry, &err);
    check_invalid(status, err, NULL, NULL, "huge key length");
    free(key);
    ckv_close(store);
}

static void unreachable_start_revision(void) {
    ckv_store *store = test_open_store("");
    ckv_error *err = NULL;
    ckv_watch *watch = NULL;
    ckv_watch_options opts;
    ckv_status status;
    ckv_watch_options_init(&opts);
    opts.start_revision = UINT64_MAX;
    status = ckv_watch_open(store, KEY("/a"), &opts, &watch, &err);
    check_invalid(status, err, "start_revision", NULL, "start_revision UINT64_MAX");
    err = NULL;
    CHECK(watch == NULL);
    opts.start_revision = UINT64_MAX - 1; /* far away, but a revision */
    CHECK_OK(ckv_watch_open(store, KEY("/a"), &opts, &watch, &err));
    ckv_watch_close(watch);
    ckv_close(store);
}

static void json_edges(void) {
    open_config_fails("{\"history\": 3, \"history\": 4}", "twice", NULL);
    open_config_fails("{\"auth\": {\"user\": \"a\", \"user\": \"b\"}}", "twice", NULL);
    open_config_fails("{\"servers\": [\"\"]}", "empty", NULL);
    open_config_fails("{\"servers\": [\"127.0.0.1:1\"], \"connect_timeout_ms\": 60000,"
                      " \"auth\": {\"nkey_seed\": \"SUgarbage\"}}",
                      "nkey_seed", NULL);
    open_config_fails("{\"history\": 18446744073709551616}", "whole number", "floating");
    open_config_fails("{\"max_watchers\": 1e400}", NULL, NULL);
    open_config_fails("{\"history\": 100}", "between 1 and 64", "..=");
    open_config_fails("{\"replicas\": 9}", "between 1 and 5", "..=");
}

static void garbage_handles(void) {
    ckv_error *err = NULL;
    ckv_event *event = NULL;
    uint64_t rev = 0;
    uintptr_t garbage[] = {(uintptr_t)0x8123456789ABCDEFull, (uintptr_t)0xFFFFFFFFFFFFFFFFull,
                           (uintptr_t)0x1234};
    size_t i;
    for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        ckv_status status = ckv_put((ckv_store *)garbage[i], KEY("/a"), VAL("v"), &rev, &err);
        check_invalid(status, err, NULL, "fork", "garbage store handle");
        err = NULL;
        status = ckv_watch_next((ckv_watch *)garbage[i], 0, &event, &err);
        check_invalid(status, err, NULL, "fork", "garbage watch handle");
        err = NULL;
        ckv_close((ckv_store *)garbage[i]);
        ckv_watch_close((ckv_watch *)garbage[i]);
    }
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(huge_inputs_give_short_messages);
    RUN(key_length_is_checked_before_reading);
    RUN(unreachable_start_revision);
    RUN(json_edges);
    RUN(garbage_handles);
    return test_finish();
}
