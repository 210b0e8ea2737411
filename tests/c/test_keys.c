/*
 * test_keys.c — the shared key vectors (tests/vectors/keys.json) through the C ABI.
 *
 * run.sh generates build/key_vectors.h from the JSON, so C checks exactly the keys the
 * Rust, Python and Go suites check: every valid key round-trips through put/get/keys,
 * every invalid one (leading '/', trailing '/', empty segment, NUL, bad UTF-8, over 1024
 * bytes) is refused with INVALID_ARGUMENT by every function that takes a key, and each
 * vector prefix selects exactly the keys that start with it byte for byte.
 */
#include "ckv_test.h"
#include "key_vectors.h"

static ckv_status write_x(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    (void)current;
    ++*(int *)user_data;
    return ckv_rmw_set_value(result, VAL("x"));
}

static void report_key(const struct key_vector *v) {
    fprintf(stderr, "    key vector \"%.*s\" (%zu bytes; %s)\n", (int)v->len, v->bytes, v->len,
            v->note);
}

static void test_invalid_keys_refused(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    ckv_entry_list *list = NULL;
    uint64_t revision = 0, last = 0;
    int callback_calls = 0;
    size_t i;

    for (i = 0; i < N_INVALID_KEYS; i++) {
        const struct key_vector *v = &INVALID_KEYS[i];
        int failures_before = ckv_test_failures;
        CHECK_FAILS(CKV_INVALID_ARGUMENT,
                    ckv_put(store, v->bytes, v->len, VAL("x"), &revision, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(store, v->bytes, v->len, &entry, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT,
                    ckv_create(store, v->bytes, v->len, VAL("x"), &revision, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT,
                    ckv_update(store, v->bytes, v->len, VAL("x"), 1, &revision, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete(store, v->bytes, v->len, 0, &revision, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_purge(store, v->bytes, v->len, &revision, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_history(store, v->bytes, v->len, &list, &err));
        CHECK_FAILS(CKV_INVALID_ARGUMENT,
                    ckv_read_modify_write(store, v->bytes, v->len, write_x, &callback_calls,
                                          &revision, &err));
        if (ckv_test_failures != failures_before) report_key(v);
    }
    /* Nothing was written and no callback ran for a refused key. */
    CHECK(revision == 0 && entry == NULL && list == NULL && callback_calls == 0);
    CHECK_OK(ckv_last_revision(store, &last, &err));
    CHECK(last == 0);
    ckv_close(store);
}

/* Bytes a JSON vector cannot carry in a key or prefix: invalid UTF-8 is refused with a
 * message that says so, and a length is checked before any byte is read. (The messages
 * for misshapen keys and the other invalid prefixes: the shared scenarios.) */
static void test_bytes_beyond_the_scenarios(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_key_list *keys = NULL;
    ckv_entry_list *list = NULL;
    uint64_t count = 0;
    char too_long[1026];
    ckv_status status;

    status = ckv_put(store, "/a\xff", 3, VAL("x"), NULL, &err);
    CHECK_ERROR(CKV_INVALID_ARGUMENT, status, err);
    CHECK(strstr(ckv_error_message(err), "UTF-8") != NULL);
    ckv_error_free(err);
    err = NULL;
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, "/a\xff", 3, &keys, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_list(store, "/a\xff", 3, &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete_prefix(store, "/a\xff", 3, &count, &err));

    too_long[0] = '/';
    memset(too_long + 1, 'p', sizeof too_long - 1);
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, too_long, 1025, &keys, &err));
    CHECK_OK(ckv_keys(store, too_long, 1024, &keys, &err));
    CHECK(ckv_key_list_len(keys) == 0);
    ckv_key_list_free(keys);
    ckv_close(store);
}

/* Every valid key is stored and read back under exactly its own bytes. */
static void test_valid_keys_round_trip(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_key_list *keys = NULL;
    uint64_t revision = 0;
    size_t i, j, len;

    for (i = 0; i < N_VALID_KEYS; i++) {
        const struct key_vector *v = &VALID_KEYS[i];
        ckv_entry *entry = NULL;
        const char *key;
        int failures_before = ckv_test_failures;
        char value[32];
        snprintf(value, sizeof value, "value %zu", i);
        CHECK_OK(ckv_put(store, v->bytes, v->len, VAL(value), &revision, &err));
        CHECK_OK(ckv_get(store, v->bytes, v->len, &entry, &err));
        key = ckv_entry_key(entry, &len);
        CHECK(key != NULL && len == v->len && memcmp(key, v->bytes, len) == 0);
        CHECK(entry_value_is(entry, value));
        CHECK(ckv_entry_revision(entry) == revision);
        ckv_entry_free(entry);
        if (ckv_test_failures != failures_before) report_key(v);
    }

    /* keys("/") lists each of them once, byte-wise sorted. */
    CHECK_OK(ckv_keys(store, KEY("/"), &keys, &err));
    CHECK(ckv_key_list_len(keys) == N_VALID_KEYS);
    for (i = 0; i < ckv_key_list_len(keys); i++) {
        size_t found = 0;
        const char *key = ckv_key_list_get(keys, i, &len);
        for (j = 0; j < N_VALID_KEYS; j++) {
            if (VALID_KEYS[j].len == len && memcmp(VALID_KEYS[j].bytes, key, len) == 0) found++;
        }
        CHECK(found == 1);
        if (i > 0) {
            size_t prev_len;
            const char *prev = ckv_key_list_get(keys, i - 1, &prev_len);
            int order = memcmp(prev, key, prev_len < len ? prev_len : len);
            CHECK(order < 0 || (order == 0 && prev_len < len));
        }
    }
    ckv_key_list_free(keys);
    ckv_close(store);
}

static int key_has_prefix(const struct key_vector *key, const struct key_vector *prefix) {
    return key->len >= prefix->len && memcmp(key->bytes, prefix->bytes, prefix->len) == 0;
}

/* Each vector prefix selects exactly the valid keys that start with its bytes, and
 * delete_prefix removes exactly those. */
static void test_vector_prefixes(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    size_t p, i;

    for (i = 0; i < N_VALID_KEYS; i++) {
        CHECK_OK(ckv_put(store, VALID_KEYS[i].bytes, VALID_KEYS[i].len, VAL("v"), NULL, &err));
    }
    for (p = 0; p < N_PREFIXES; p++) {
        const struct key_vector *prefix = &PREFIXES[p];
        ckv_key_list *keys = NULL;
        ckv_entry_list *list = NULL;
        size_t expected = 0, k;
        int failures_before = ckv_test_failures;

        for (i = 0; i < N_VALID_KEYS; i++) expected += key_has_prefix(&VALID_KEYS[i], prefix);

        CHECK_OK(ckv_keys(store, prefix->bytes, prefix->len, &keys, &err));
        CHECK_OK(ckv_list(store, prefix->bytes, prefix->len, &list, &err));
        CHECK(ckv_key_list_len(keys) == expected);
        CHECK(ckv_entry_list_len(list) == expected);
        for (k = 0; k < ckv_key_list_len(keys); k++) {
            size_t len;
            const char *key = ckv_key_list_get(keys, k, &len);
            const char *listed = ckv_entry_key(ckv_entry_list_get(list, k), NULL);
            CHECK(len >= prefix->len && memcmp(key, prefix->bytes, prefix->len) == 0);
            CHECK(listed != NULL && strcmp(listed, key) == 0);
        }
        ckv_key_list_free(keys);
        ckv_entry_list_free(list);
        if (ckv_test_failures != failures_before) {
            fprintf(stderr, "    prefix vector %.*s (%zu keys expected)\n", (int)prefix->len,
                    prefix->bytes, expected);
        }
    }
    /* Longest prefixes first, so each delete_prefix count is what is still live. */
    for (p = N_PREFIXES; p-- > 0;) {
        const struct key_vector *prefix = &PREFIXES[p];
        size_t expected = 0;
        uint64_t count = 0;
        ckv_key_list *keys = NULL;
        for (i = 0; i < N_VALID_KEYS; i++) {
            ckv_entry *entry = NULL;
            if (!key_has_prefix(&VALID_KEYS[i], prefix)) continue;
            if (ckv_get(store, VALID_KEYS[i].bytes, VALID_KEYS[i].len, &entry, NULL) == CKV_OK) {
                expected++;
                ckv_entry_free(entry);
            }
        }
        CHECK_OK(ckv_delete_prefix(store, prefix->bytes, prefix->len, &count, &err));
        CHECK(count == expected);
        CHECK_OK(ckv_keys(store, prefix->bytes, prefix->len, &keys, &err));
        CHECK(ckv_key_list_len(keys) == 0);
        ckv_key_list_free(keys);
    }
    ckv_close(store);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    CHECK(N_VALID_KEYS > 0 && N_INVALID_KEYS > 0 && N_PREFIXES > 0);
    RUN(test_invalid_keys_refused);
    RUN(test_bytes_beyond_the_scenarios);
    RUN(test_valid_keys_round_trip);
    RUN(test_vector_prefixes);
    return test_finish();
}
