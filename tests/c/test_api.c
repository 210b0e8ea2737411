/*
 * test_api.c — the C ABI's conventions, function by function.
 *
 * What a C caller can get wrong — NULL handles, NULL buffers, NULL outputs, bad URLs and
 * JSON, a closed handle — must come back as a clear status with a message, through the
 * same call, never a crash. And what the header promises about ownership must hold:
 * outputs written only on success, err_out optional, every _free and _close taking NULL.
 * Run under valgrind by run.sh, this also proves a closed handle never reads freed memory.
 */
#include "ckv_test.h"

#include <stdint.h>

/* Dummy addresses used as "untouched" markers; never dereferenced. */
static int marker_a, marker_b;
#define ENTRY_MARKER ((ckv_entry *)(void *)&marker_a)
#define LIST_MARKER ((void *)&marker_b)
#define REVISION_MARKER UINT64_C(0xFEEDFACECAFEBEEF)

static void test_version(void) {
    const char *version = ckv_version();
    CHECK(version != NULL);
    CHECK(version != NULL && version[0] >= '0' && version[0] <= '9');
    CHECK(version != NULL && strchr(version, '.') != NULL);
}

/* What one of the library's naming functions must call each code. */
struct code_name {
    const char *(*name_of)(int32_t code);
    int32_t code;
    const char *name;
};

/* Every code of the header by the name the library gives it, which is the constant's
 * name without its prefix; the codes are dense, so nothing just outside them (or far
 * away) has a name. */
static void test_names(void) {
#define STATUS(name) {ckv_status_name, CKV_##name, #name},
#define OP(name) {ckv_operation_name, CKV_OP_##name, #name},
#define EVENT(name) {ckv_event_kind_name, CKV_EVENT_##name, #name},
#define CANCEL(name) {ckv_cancel_reason_name, CKV_CANCEL_##name, #name},
    static const struct code_name table[] = {
        STATUS(OK) STATUS(NOT_FOUND) STATUS(CONFLICT) STATUS(INVALID_ARGUMENT) STATUS(TIMEOUT)
        STATUS(CLOSED) STATUS(UNAVAILABLE) STATUS(UNAUTHORIZED) STATUS(LIMIT)
        STATUS(UNSUPPORTED) STATUS(CANCELED) STATUS(INTERNAL) STATUS(PERMISSION_DENIED)
        STATUS(LEASE_NOT_FOUND)
        OP(PUT) OP(DELETE) OP(PURGE) OP(EXPIRED)
        EVENT(PUT) EVENT(DELETE) EVENT(PURGE) EVENT(EXPIRED) EVENT(SYNCED) EVENT(PROGRESS)
        EVENT(CANCELED)
        CANCEL(CLOSED) CANCEL(OVERFLOW) CANCEL(WATCHER_LIMIT) CANCEL(HISTORY_LOST)
        CANCEL(STORE_CLOSED)
        {ckv_status_name, -1, "UNKNOWN"},
        {ckv_status_name, CKV_LEASE_NOT_FOUND + 1, "UNKNOWN"},
        {ckv_status_name, INT32_MAX, "UNKNOWN"},
        {ckv_status_name, INT32_MIN, "UNKNOWN"},
        {ckv_operation_name, 0, "UNKNOWN"},
        {ckv_operation_name, CKV_OP_EXPIRED + 1, "UNKNOWN"},
        {ckv_operation_name, -1, "UNKNOWN"},
        {ckv_event_kind_name, 0, "UNKNOWN"},
        {ckv_event_kind_name, CKV_EVENT_CANCELED + 1, "UNKNOWN"},
        {ckv_cancel_reason_name, 0, "UNKNOWN"},
        {ckv_cancel_reason_name, -1, "UNKNOWN"},
    };
#undef STATUS
#undef OP
#undef EVENT
#undef CANCEL
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *name = table[i].name_of(table[i].code);
        if (!CHECK(name != NULL && strcmp(name, table[i].name) == 0)) {
            fprintf(stderr, "    entry %zu: code %d is named %s, not %s\n", i,
                    (int)table[i].code, name ? name : "(null)", table[i].name);
        }
    }
}

static void test_open_by_url(void) {
    ckv_error *err = NULL;
    ckv_store *store = NULL;
    uint64_t revision = 0;
    CHECK_OK(ckv_open("mem://", &store, &err));
    CHECK(store != NULL);
    CHECK_OK(ckv_put(store, KEY("/opened/by/url"), VAL("yes"), &revision, &err));
    CHECK(revision > 0);
    ckv_close(store);
}

static void test_open_errors(void) {
    ckv_error *err = NULL;
    ckv_store *store = (ckv_store *)LIST_MARKER;

    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open(NULL, &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open("redis://127.0.0.1:6379", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open("", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open("mem://", NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open("\xff\xfe", &store, &err));

    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config(NULL, &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("{\"url\":\"mem://\"}", NULL, &err));
    /* Malformed JSON, a typo'd field and a wrong type are refused, not defaulted. */
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("{\"url\": \"mem://\"", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("not json", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_open_config("{\"url\":\"mem://\",\"max_valu_size\":16}", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_open_config("{\"url\":\"mem://\",\"history\":\"many\"}", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_open_config("{\"url\":\"ftp://example.org\"}", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("{\"url\":\"mem://\",\"history\":0}",
                                                      &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_open_config("{\"url\":\"mem://\",\"bucket\":\"a.b\"}", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("\"\xff\"", &store, &err));
    /* A config is a JSON object; other JSON values are not defaulted into one. */
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("null", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("[]", &store, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_open_config("\"mem://\"", &store, &err));

    /* err_out is optional: the status alone still says what happened. */
    CHECK(ckv_open("bogus://", &store, NULL) == CKV_INVALID_ARGUMENT);
    CHECK(ckv_open_config("{", &store, NULL) == CKV_INVALID_ARGUMENT);

    /* Nothing was written to store_out by any of the failures. */
    CHECK(store == (ckv_store *)LIST_MARKER);
}

/* The message names the mistake, so a user can fix it without reading the source. */
static void test_error_messages_explain(void) {
    ckv_error *err = NULL;
    ckv_store *store = NULL;
    ckv_status status;

    status = ckv_open_config("{\"url\":\"mem://\",\"max_valu_size\":16}", &store, &err);
    CHECK_ERROR(CKV_INVALID_ARGUMENT, status, err);
    CHECK(strstr(ckv_error_message(err), "max_valu_size") != NULL);
    CHECK(ckv_error_current_revision(err) == 0);
    ckv_error_free(err);
    err = NULL;

    status = ckv_open("redis://127.0.0.1:6379", &store, &err);
    CHECK_ERROR(CKV_INVALID_ARGUMENT, status, err);
    CHECK(strstr(ckv_error_message(err), "redis://") != NULL);
    ckv_error_free(err);
    err = NULL;
}

static uint8_t fake_buffer[8];

static ckv_status write_one(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    (void)user_data;
    (void)current;
    return ckv_rmw_set_value(result, VAL("1"));
}

static void test_null_store(void) {
    ckv_error *err = NULL;
    ckv_entry *entry = NULL;
    ckv_key_list *keys = NULL;
    ckv_entry_list *list = NULL;
    uint64_t out = 0;

    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put(NULL, KEY("/a"), VAL("v"), &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(NULL, KEY("/a"), &entry, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_create(NULL, KEY("/a"), VAL("v"), &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_update(NULL, KEY("/a"), VAL("v"), 1, &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete(NULL, KEY("/a"), 0, &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_purge(NULL, KEY("/a"), &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete_prefix(NULL, KEY("/a"), &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(NULL, KEY("/"), &keys, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_list(NULL, KEY("/"), &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_history(NULL, KEY("/a"), &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_last_revision(NULL, &out, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_read_modify_write(NULL, KEY("/a"), write_one, NULL, &out, &err));
    CHECK(entry == NULL && keys == NULL && list == NULL && out == 0);
}

/* A pointer coordkv never handed out is refused, not dereferenced. */
static void test_foreign_store_pointer(void) {
    ckv_error *err = NULL;
    ckv_store *bogus = (ckv_store *)(void *)&marker_a;
    ckv_entry *entry = NULL;
    uint64_t out = 0;
    ckv_status status;

    status = ckv_put(bogus, KEY("/a"), VAL("v"), &out, &err);
    CHECK_ERROR(CKV_INVALID_ARGUMENT, status, err);
    CHECK(strstr(ckv_error_message(err), "handle") != NULL);
    ckv_error_free(err);
    err = NULL;
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(bogus, KEY("/a"), &entry, &err));
    CHECK(out == 0 && entry == NULL);
    ckv_close(bogus); /* a no-op, like NULL */
}

/* A NULL buffer with a non-zero length is refused; with length 0 it is an empty buffer. */
static void test_null_buffers(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    ckv_key_list *keys = NULL;
    ckv_entry_list *list = NULL;
    uint64_t revision = 0, count = 0;
    size_t len = 99;

    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put(store, NULL, 2, VAL("v"), &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put(store, KEY("/a"), NULL, 3, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(store, NULL, 2, &entry, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_create(store, NULL, 2, VAL("v"), &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_create(store, KEY("/a"), NULL, 1, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_update(store, NULL, 2, VAL("v"), 1, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_update(store, KEY("/a"), NULL, 1, 1, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete(store, NULL, 2, 0, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_purge(store, NULL, 2, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_history(store, NULL, 2, &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, NULL, 1, &keys, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_list(store, NULL, 1, &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete_prefix(store, NULL, 1, &count, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_read_modify_write(store, NULL, 2, write_one, NULL, &revision, &err));
    CHECK(revision == 0 && count == 0 && entry == NULL && keys == NULL && list == NULL);

    /* NULL key with length 0 is the empty key, which is not a key. */
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put(store, NULL, 0, VAL("v"), &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, NULL, 0, &keys, &err));

    /* NULL value with length 0 is the empty value: stored and read back as such. */
    CHECK_OK(ckv_put(store, KEY("/empty"), NULL, 0, &revision, &err));
    CHECK(revision > 0);
    CHECK_OK(ckv_get(store, KEY("/empty"), &entry, &err));
    CHECK(ckv_entry_value(entry, &len) != NULL);
    CHECK(len == 0);
    CHECK(ckv_entry_operation(entry) == CKV_OP_PUT);
    ckv_entry_free(entry);

    /* A non-NULL pointer with length 0 is also empty; the pointer is not read. */
    CHECK_OK(ckv_update(store, KEY("/empty"), fake_buffer, 0, revision, &revision, &err));
    CHECK_OK(ckv_create(store, KEY("/empty2"), NULL, 0, NULL, &err));
    ckv_close(store);
}

/* Required outputs must not be NULL; optional ones (revision_out, count_out) may be. */
static void test_null_outputs(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    uint64_t revision = 0;

    CHECK_OK(ckv_put(store, KEY("/o/a"), VAL("1"), NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(store, KEY("/o/a"), NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, KEY("/o/"), NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_list(store, KEY("/o/"), NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_history(store, KEY("/o/a"), NULL, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_last_revision(store, NULL, &err));

    CHECK_OK(ckv_create(store, KEY("/o/b"), VAL("1"), NULL, &err));
    CHECK_OK(ckv_get(store, KEY("/o/b"), &entry, &err));
    revision = ckv_entry_revision(entry);
    ckv_entry_free(entry);
    CHECK_OK(ckv_update(store, KEY("/o/b"), VAL("2"), revision, NULL, &err));
    CHECK_OK(ckv_read_modify_write(store, KEY("/o/c"), write_one, NULL, NULL, &err));
    CHECK_OK(ckv_delete(store, KEY("/o/c"), 0, NULL, &err));
    CHECK_OK(ckv_purge(store, KEY("/o/c"), NULL, &err));
    CHECK_OK(ckv_delete_prefix(store, KEY("/o/"), NULL, &err));
    /* The failed calls above wrote nothing: both keys went by delete_prefix. */
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/o/a"), &entry, &err));
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/o/b"), &entry, &err));
    ckv_close(store);
}

/* On failure no output is written; on success err_out is left alone. */
static void test_outputs_untouched(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = ENTRY_MARKER;
    ckv_key_list *keys = (ckv_key_list *)LIST_MARKER;
    ckv_entry_list *list = (ckv_entry_list *)LIST_MARKER;
    ckv_error *untouched = (ckv_error *)LIST_MARKER;
    uint64_t revision = REVISION_MARKER, count = REVISION_MARKER, first = 0;

    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/u/missing"), &entry, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_get(store, KEY("u/bad"), &entry, &err));
    CHECK_FAILS(CKV_NOT_FOUND, ckv_history(store, KEY("/u/missing"), &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_keys(store, KEY("no-slash"), &keys, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_list(store, KEY("no-slash"), &list, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_put(store, KEY("/u/"), VAL("v"), &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_delete_prefix(store, KEY("u"), &count, &err));
    CHECK(entry == ENTRY_MARKER);
    CHECK(keys == (ckv_key_list *)LIST_MARKER);
    CHECK(list == (ckv_entry_list *)LIST_MARKER);
    CHECK(revision == REVISION_MARKER);
    CHECK(count == REVISION_MARKER);

    CHECK_OK(ckv_put(store, KEY("/u/a"), VAL("1"), &first, &err));
    revision = REVISION_MARKER;
    CHECK_FAILS(CKV_CONFLICT, ckv_create(store, KEY("/u/a"), VAL("2"), &revision, &err));
    CHECK_FAILS(CKV_CONFLICT,
                ckv_update(store, KEY("/u/a"), VAL("2"), first + 100, &revision, &err));
    CHECK_FAILS(CKV_CONFLICT, ckv_delete(store, KEY("/u/a"), first + 100, &revision, &err));
    CHECK(revision == REVISION_MARKER);

    /* A successful call does not write err_out at all. */
    CHECK(ckv_put(store, KEY("/u/b"), VAL("1"), &revision, &untouched) == CKV_OK);
    CHECK(untouched == (ckv_error *)LIST_MARKER);
    CHECK(revision > first);

    /* Failing calls with err_out NULL still return their status. */
    CHECK(ckv_get(store, KEY("/u/missing"), &entry, NULL) == CKV_NOT_FOUND);
    CHECK(ckv_create(store, KEY("/u/a"), VAL("2"), NULL, NULL) == CKV_CONFLICT);
    CHECK(ckv_put(NULL, KEY("/u/a"), VAL("2"), NULL, NULL) == CKV_INVALID_ARGUMENT);
    CHECK(entry == ENTRY_MARKER);
    ckv_close(store);
}

/* A closed handle stays closed: it never reaches a store opened after it in the same slot.
 * (Every store function on a closed store is CLOSED: the shared scenarios.) Under valgrind
 * this also proves no use of freed memory. */
static void test_use_after_close(void) {
    ckv_store *store = test_open_store(""), *other = NULL;
    ckv_error *err = NULL;
    ckv_entry *entry = NULL;
    uint64_t out = REVISION_MARKER;

    CHECK_OK(ckv_put(store, KEY("/c/a"), VAL("1"), NULL, &err));
    ckv_close(store);
    CHECK_FAILS(CKV_CLOSED, ckv_get(store, KEY("/c/a"), &entry, &err));
    CHECK_FAILS(CKV_CLOSED, ckv_put(store, KEY("/c/a"), VAL("2"), &out, &err));
    CHECK(out == REVISION_MARKER && entry == NULL);

    /* Closing twice, and closing NULL, do nothing. */
    ckv_close(store);
    ckv_close(NULL);

    /* A store opened afterwards may reuse the slot; the old handle must not reach it,
     * and closing the old handle again must not close the new store. */
    other = test_open_store("");
    CHECK(other != store);
    CHECK_FAILS(CKV_CLOSED, ckv_put(store, KEY("/c/a"), VAL("3"), &out, &err));
    ckv_close(store);
    CHECK_OK(ckv_put(other, KEY("/c/a"), VAL("4"), &out, &err));
    CHECK_OK(ckv_get(other, KEY("/c/a"), &entry, &err));
    CHECK(entry_value_is(entry, "4"));
    ckv_entry_free(entry);
    ckv_close(other);
}

/* Accessors and _free functions given NULL (or an index out of range). */
static void test_null_accessors(void) {
    size_t len = 77;
    CHECK(ckv_entry_key(NULL, &len) == NULL);
    CHECK(ckv_entry_value(NULL, &len) == NULL);
    CHECK(len == 77);
    CHECK(ckv_entry_revision(NULL) == 0);
    CHECK(ckv_entry_operation(NULL) == 0);
    CHECK(ckv_entry_timestamp_ns(NULL) == 0);
    CHECK(ckv_entry_list_len(NULL) == 0);
    CHECK(ckv_entry_list_get(NULL, 0) == NULL);
    CHECK(ckv_key_list_len(NULL) == 0);
    CHECK(ckv_key_list_get(NULL, 0, &len) == NULL);
    CHECK(ckv_error_status(NULL) == CKV_INTERNAL);
    CHECK(ckv_error_message(NULL) != NULL && ckv_error_message(NULL)[0] == '\0');
    CHECK(ckv_error_current_revision(NULL) == 0);
    ckv_entry_free(NULL);
    ckv_entry_list_free(NULL);
    ckv_key_list_free(NULL);
    ckv_error_free(NULL);
    CHECK(ckv_rmw_set_value(NULL, VAL("x")) == CKV_INVALID_ARGUMENT);
}

/* What ckv_get, ckv_keys, ckv_list and ckv_history hand back, read through accessors. */
static void test_entry_and_list_accessors(void) {
    ckv_store *store = test_open_store("");
    ckv_error *err = NULL;
    ckv_entry *entry = NULL;
    ckv_key_list *keys = NULL;
    ckv_entry_list *list = NULL;
    const ckv_entry *item;
    const char *key;
    uint64_t r1 = 0, r2 = 0, last = 0;
    size_t len = 0;
    const uint8_t binary[] = {0x00, 0xff, 0x10, 0x00};
    const uint8_t *value;

    CHECK_OK(ckv_last_revision(store, &last, &err));
    CHECK(last == 0);

    CHECK_OK(ckv_put(store, KEY("/e/one"), binary, sizeof binary, &r1, &err));
    CHECK_OK(ckv_put(store, KEY("/e/two"), VAL("second"), &r2, &err));
    CHECK(r1 > 0 && r2 > r1);
    CHECK_OK(ckv_last_revision(store, &last, &err));
    CHECK(last == r2);

    CHECK_OK(ckv_get(store, KEY("/e/one"), &entry, &err));
    key = ckv_entry_key(entry, &len);
    CHECK(key != NULL && len == strlen("/e/one") && strcmp(key, "/e/one") == 0);
    CHECK(ckv_entry_key(entry, NULL) == key);
    value = ckv_entry_value(entry, &len);
    CHECK(len == sizeof binary && memcmp(value, binary, sizeof binary) == 0);
    CHECK(ckv_entry_value(entry, NULL) == value);
    CHECK(ckv_entry_revision(entry) == r1);
    CHECK(ckv_entry_operation(entry) == CKV_OP_PUT);
    /* Recorded as wall-clock time: after 2020-01-01, not a made-up zero. */
    CHECK(ckv_entry_timestamp_ns(entry) > UINT64_C(1577836800000000000));
    ckv_entry_free(entry);

    CHECK_OK(ckv_keys(store, KEY("/e/"), &keys, &err));
    CHECK(ckv_key_list_len(keys) == 2);
    CHECK(key_at_is(keys, 0, "/e/one"));
    CHECK(key_at_is(keys, 1, "/e/two"));
    key = ckv_key_list_get(keys, 1, NULL);
    CHECK(key != NULL && strcmp(key, "/e/two") == 0); /* NUL-terminated too */
    CHECK(ckv_key_list_get(keys, 2, &len) == NULL);
    CHECK(ckv_key_list_get(keys, (size_t)-1, &len) == NULL);
    ckv_key_list_free(keys);

    CHECK_OK(ckv_list(store, KEY("/e/"), &list, &err));
    CHECK(ckv_entry_list_len(list) == 2);
    item = ckv_entry_list_get(list, 1);
    CHECK(item != NULL && entry_value_is(item, "second"));
    CHECK(ckv_entry_revision(item) == r2);
    CHECK(strcmp(ckv_entry_key(item, NULL), "/e/two") == 0);
    CHECK(ckv_entry_list_get(list, 2) == NULL);
    ckv_entry_list_free(list);

    CHECK_OK(ckv_history(store, KEY("/e/two"), &list, &err));
    CHECK(ckv_entry_list_len(list) == 1);
    CHECK(ckv_entry_revision(ckv_entry_list_get(list, 0)) == r2);
    ckv_entry_list_free(list);
    ckv_close(store);
}

static ckv_status set_twice(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    (void)user_data;
    (void)current;
    if (ckv_rmw_set_value(result, NULL, 3) != CKV_INVALID_ARGUMENT) return CKV_INTERNAL;
    if (ckv_rmw_set_value(result, VAL("first")) != CKV_OK) return CKV_INTERNAL;
    return ckv_rmw_set_value(result, VAL("last wins"));
}

static void test_rmw_arguments(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    uint64_t revision = REVISION_MARKER;

    CHECK_FAILS(CKV_INVALID_ARGUMENT,
                ckv_read_modify_write(store, KEY("/r/a"), NULL, NULL, &revision, &err));
    CHECK(revision == REVISION_MARKER);
    CHECK_OK(ckv_read_modify_write(store, KEY("/r/a"), set_twice, NULL, &revision, &err));
    CHECK_OK(ckv_get(store, KEY("/r/a"), &entry, &err));
    CHECK(entry_value_is(entry, "last wins"));
    CHECK(ckv_entry_revision(entry) == revision);
    ckv_entry_free(entry);
    ckv_close(store);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_version);
    RUN(test_names);
    RUN(test_open_by_url);
    RUN(test_open_errors);
    RUN(test_error_messages_explain);
    RUN(test_null_store);
    RUN(test_foreign_store_pointer);
    RUN(test_null_buffers);
    RUN(test_null_outputs);
    RUN(test_outputs_untouched);
    RUN(test_use_after_close);
    RUN(test_null_accessors);
    RUN(test_entry_and_list_accessors);
    RUN(test_rmw_arguments);
    return test_finish();
}
