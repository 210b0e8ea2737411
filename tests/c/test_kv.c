/*
 * test_kv.c — the key-value contract of docs/design.md, as a C program sees it.
 *
 * Revisions, compare-and-swap with the current revision carried by CONFLICT, tombstones
 * and purges, sorted prefix listings (segment-aligned "/a/" versus byte-wise "/a"),
 * delete_prefix and read_modify_write. run.sh runs it on mem:// and, when
 * COORDKV_TEST_NATS_URL is set, on NATS as well: the contract is the same on both.
 */
#include "ckv_test.h"

/* The revision of the key's live entry, or 0 when it has none. */
static uint64_t live_revision(ckv_store *store, const char *key) {
    ckv_entry *entry = NULL;
    uint64_t revision = 0;
    if (ckv_get(store, KEY(key), &entry, NULL) == CKV_OK) {
        revision = ckv_entry_revision(entry);
        ckv_entry_free(entry);
    }
    return revision;
}

static int value_is(ckv_store *store, const char *key, const char *text) {
    ckv_entry *entry = NULL;
    int same = 0;
    if (ckv_get(store, KEY(key), &entry, NULL) == CKV_OK) {
        same = entry_value_is(entry, text);
        ckv_entry_free(entry);
    }
    return same;
}

static void test_put_get_revisions(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    uint64_t r1 = 0, r2 = 0, r3 = 0, last = 0;

    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/p/a"), &entry, &err));
    CHECK_OK(ckv_put(store, KEY("/p/a"), VAL("one"), &r1, &err));
    CHECK_OK(ckv_put(store, KEY("/p/b"), VAL("other key"), &r2, &err));
    CHECK_OK(ckv_put(store, KEY("/p/a"), VAL("two"), &r3, &err));
    /* One store-wide sequence, strictly increasing across keys. */
    CHECK(r1 > 0 && r2 > r1 && r3 > r2);
    CHECK_OK(ckv_last_revision(store, &last, &err));
    CHECK(last == r3);

    CHECK_OK(ckv_get(store, KEY("/p/a"), &entry, &err));
    CHECK(entry_value_is(entry, "two"));
    CHECK(ckv_entry_revision(entry) == r3);
    ckv_entry_free(entry);
    CHECK(value_is(store, "/p/b", "other key"));
    ckv_close(store);
}

static void test_create_conflict_carries_revision(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    uint64_t first = 0, revision = 0;
    ckv_status status;

    CHECK_OK(ckv_create(store, KEY("/lock/leader"), VAL("node-1"), &first, &err));
    status = ckv_create(store, KEY("/lock/leader"), VAL("node-2"), &revision, &err);
    CHECK_ERROR(CKV_CONFLICT, status, err);
    CHECK(ckv_error_current_revision(err) == first);
    ckv_error_free(err);
    err = NULL;
    CHECK(revision == 0);
    CHECK(value_is(store, "/lock/leader", "node-1"));
    CHECK(live_revision(store, "/lock/leader") == first);
    ckv_close(store);
}

static void test_update_at_stale_revision(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    uint64_t r1 = 0, r2 = 0, r3 = 0;
    ckv_status status;

    CHECK_OK(ckv_put(store, KEY("/cfg"), VAL("v1"), &r1, &err));
    CHECK_OK(ckv_update(store, KEY("/cfg"), VAL("v2"), r1, &r2, &err));
    CHECK(r2 > r1);

    /* A writer still holding r1 loses, and learns r2 without another read. */
    status = ckv_update(store, KEY("/cfg"), VAL("stale"), r1, &r3, &err);
    CHECK_ERROR(CKV_CONFLICT, status, err);
    CHECK(ckv_error_current_revision(err) == r2);
    ckv_error_free(err);
    err = NULL;
    CHECK(r3 == 0);
    CHECK(value_is(store, "/cfg", "v2"));

    /* Retrying at the revision it was told succeeds. */
    CHECK_OK(ckv_update(store, KEY("/cfg"), VAL("v3"), r2, &r3, &err));
    CHECK(r3 > r2);
    CHECK(value_is(store, "/cfg", "v3"));

    /* Revision 0 means "no revision": it refuses a key that has one... */
    status = ckv_update(store, KEY("/cfg"), VAL("zero"), 0, NULL, &err);
    CHECK_ERROR(CKV_CONFLICT, status, err);
    CHECK(ckv_error_current_revision(err) == r3);
    ckv_error_free(err);
    err = NULL;
    /* ...and writes a key never written. */
    CHECK_OK(ckv_update(store, KEY("/cfg-new"), VAL("first"), 0, NULL, &err));
    CHECK(value_is(store, "/cfg-new", "first"));

    /* An update at a revision from the future conflicts too. */
    status = ckv_update(store, KEY("/cfg"), VAL("future"), r3 + 1000, NULL, &err);
    CHECK_ERROR(CKV_CONFLICT, status, err);
    CHECK(ckv_error_current_revision(err) == r3);
    ckv_error_free(err);
    ckv_close(store);
}

static void test_create_over_tombstone(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    uint64_t put = 0, tombstone = 0, created = 0, purged = 0;

    CHECK_OK(ckv_put(store, KEY("/t/k"), VAL("old"), &put, &err));
    CHECK_OK(ckv_delete(store, KEY("/t/k"), 0, &tombstone, &err));
    CHECK(tombstone > put);
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/t/k"), &entry, &err));

    /* A tombstone is not a live value: create succeeds over it. */
    CHECK_OK(ckv_create(store, KEY("/t/k"), VAL("new"), &created, &err));
    CHECK(created > tombstone);
    CHECK(value_is(store, "/t/k", "new"));

    /* And over a purge marker. */
    CHECK_OK(ckv_purge(store, KEY("/t/k"), &purged, &err));
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/t/k"), &entry, &err));
    CHECK_OK(ckv_create(store, KEY("/t/k"), VAL("again"), &created, &err));
    CHECK(created > purged);
    CHECK(value_is(store, "/t/k", "again"));
    ckv_close(store);
}

static void test_conditional_delete(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    ckv_entry_list *history = NULL;
    uint64_t r1 = 0, r2 = 0, tombstone = 0, blind = 0;
    ckv_status status;

    CHECK_OK(ckv_put(store, KEY("/d/k"), VAL("1"), &r1, &err));
    CHECK_OK(ckv_put(store, KEY("/d/k"), VAL("2"), &r2, &err));

    status = ckv_delete(store, KEY("/d/k"), r1, &tombstone, &err);
    CHECK_ERROR(CKV_CONFLICT, status, err);
    CHECK(ckv_error_current_revision(err) == r2);
    ckv_error_free(err);
    err = NULL;
    CHECK(tombstone == 0);
    CHECK(value_is(store, "/d/k", "2"));

    CHECK_OK(ckv_delete(store, KEY("/d/k"), r2, &tombstone, &err));
    CHECK(tombstone > r2);
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/d/k"), &entry, &err));

    CHECK_OK(ckv_history(store, KEY("/d/k"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 3);
    CHECK(ckv_entry_operation(ckv_entry_list_get(history, 2)) == CKV_OP_DELETE);
    CHECK(ckv_entry_revision(ckv_entry_list_get(history, 2)) == tombstone);
    ckv_entry_list_free(history);

    /* An unconditional delete of a key never written still writes a tombstone. */
    CHECK_OK(ckv_delete(store, KEY("/d/never"), 0, &blind, &err));
    CHECK(blind > tombstone);
    CHECK_OK(ckv_history(store, KEY("/d/never"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 1);
    CHECK(ckv_entry_operation(ckv_entry_list_get(history, 0)) == CKV_OP_DELETE);
    ckv_entry_list_free(history);
    ckv_close(store);
}

static void test_purge_then_history(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    ckv_entry_list *history = NULL;
    ckv_key_list *keys = NULL;
    uint64_t revs[4] = {0, 0, 0, 0}, marker = 0, after = 0;
    size_t i;

    CHECK_FAILS(CKV_NOT_FOUND, ckv_history(store, KEY("/h/k"), &history, &err));
    CHECK_OK(ckv_put(store, KEY("/h/k"), VAL("a"), &revs[0], &err));
    CHECK_OK(ckv_put(store, KEY("/h/k"), VAL("b"), &revs[1], &err));
    CHECK_OK(ckv_put(store, KEY("/h/k"), VAL("c"), &revs[2], &err));
    CHECK_OK(ckv_delete(store, KEY("/h/k"), 0, &revs[3], &err));

    CHECK_OK(ckv_history(store, KEY("/h/k"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 4);
    for (i = 0; i < 4 && i < ckv_entry_list_len(history); i++) {
        const ckv_entry *e = ckv_entry_list_get(history, i);
        CHECK(ckv_entry_revision(e) == revs[i]);
        CHECK(ckv_entry_operation(e) == (i < 3 ? CKV_OP_PUT : CKV_OP_DELETE));
        CHECK(strcmp(ckv_entry_key(e, NULL), "/h/k") == 0);
    }
    CHECK(entry_value_is(ckv_entry_list_get(history, 1), "b"));
    ckv_entry_list_free(history);

    /* Purge drops every earlier revision and leaves only its marker. */
    CHECK_OK(ckv_purge(store, KEY("/h/k"), &marker, &err));
    CHECK(marker > revs[3]);
    CHECK_OK(ckv_history(store, KEY("/h/k"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 1);
    CHECK(ckv_entry_operation(ckv_entry_list_get(history, 0)) == CKV_OP_PURGE);
    CHECK(ckv_entry_revision(ckv_entry_list_get(history, 0)) == marker);
    ckv_entry_list_free(history);
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/h/k"), &entry, &err));
    CHECK_OK(ckv_keys(store, KEY("/h/"), &keys, &err));
    CHECK(ckv_key_list_len(keys) == 0);
    ckv_key_list_free(keys);

    CHECK_OK(ckv_put(store, KEY("/h/k"), VAL("d"), &after, &err));
    CHECK_OK(ckv_history(store, KEY("/h/k"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 2);
    CHECK(ckv_entry_operation(ckv_entry_list_get(history, 0)) == CKV_OP_PURGE);
    CHECK(ckv_entry_revision(ckv_entry_list_get(history, 1)) == after);
    ckv_entry_list_free(history);
    ckv_close(store);
}

/* {"history": 3} keeps the three newest revisions of each key. */
static void test_history_limit(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store(",\"history\":3");
    ckv_entry_list *history = NULL;
    uint64_t revs[5];
    char value[8];
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(value, sizeof value, "v%d", i);
        CHECK_OK(ckv_put(store, KEY("/hl/k"), VAL(value), &revs[i], &err));
    }
    CHECK_OK(ckv_history(store, KEY("/hl/k"), &history, &err));
    CHECK(ckv_entry_list_len(history) == 3);
    CHECK(ckv_entry_revision(ckv_entry_list_get(history, 0)) == revs[2]);
    CHECK(entry_value_is(ckv_entry_list_get(history, 0), "v2"));
    CHECK(ckv_entry_revision(ckv_entry_list_get(history, 2)) == revs[4]);
    ckv_entry_list_free(history);
    ckv_close(store);
}

static void check_keys(ckv_store *store, const char *prefix, const char *const *want,
                       size_t n_want, int line) {
    ckv_error *err = NULL;
    ckv_key_list *keys = NULL;
    ckv_entry_list *list = NULL;
    size_t i;
    int failures_before = ckv_test_failures;

    CHECK_OK(ckv_keys(store, KEY(prefix), &keys, &err));
    CHECK_OK(ckv_list(store, KEY(prefix), &list, &err));
    CHECK(ckv_key_list_len(keys) == n_want);
    CHECK(ckv_entry_list_len(list) == n_want);
    for (i = 0; i < n_want && i < ckv_key_list_len(keys); i++) {
        const ckv_entry *entry = ckv_entry_list_get(list, i);
        CHECK(key_at_is(keys, i, want[i]));
        CHECK(entry != NULL && strcmp(ckv_entry_key(entry, NULL), want[i]) == 0);
        /* Every test key holds its own name as value. */
        CHECK(entry_value_is(entry, want[i]));
        CHECK(ckv_entry_operation(entry) == CKV_OP_PUT);
    }
    if (ckv_test_failures != failures_before) {
        fprintf(stderr, "    (prefix \"%s\", called from line %d) got:", prefix, line);
        for (i = 0; i < ckv_key_list_len(keys); i++) {
            fprintf(stderr, " %s", ckv_key_list_get(keys, i, NULL));
        }
        fprintf(stderr, "\n");
    }
    ckv_key_list_free(keys);
    ckv_entry_list_free(list);
}

#define CHECK_KEYS(store, prefix, ...)                                               \
    do {                                                                             \
        static const char *const want_[] = {__VA_ARGS__};                            \
        check_keys((store), (prefix), want_, sizeof want_ / sizeof want_[0], __LINE__); \
    } while (0)

static void put_own_name(ckv_store *store, const char *key) {
    ckv_error *err = NULL;
    CHECK_OK(ckv_put(store, KEY(key), VAL(key), NULL, &err));
}

static void test_keys_and_list_prefixes(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_key_list *keys = NULL;

    /* Written out of order on purpose: listings come back sorted byte-wise. */
    put_own_name(store, "/b/z");
    put_own_name(store, "/a/y");
    put_own_name(store, "/ab");
    put_own_name(store, "/a/x/deep");
    put_own_name(store, "/a");
    put_own_name(store, "/a/x");
    put_own_name(store, "/a-b");
    put_own_name(store, "/gone");
    CHECK_OK(ckv_delete(store, KEY("/gone"), 0, NULL, &err));

    /* Segment-aligned: only what lies under the /a/ directory. */
    CHECK_KEYS(store, "/a/", "/a/x", "/a/x/deep", "/a/y");
    /* Byte-wise: everything whose bytes start with "/a", like etcd. */
    CHECK_KEYS(store, "/a", "/a", "/a-b", "/a/x", "/a/x/deep", "/a/y", "/ab");
    CHECK_KEYS(store, "/a/x", "/a/x", "/a/x/deep");
    CHECK_KEYS(store, "/", "/a", "/a-b", "/a/x", "/a/x/deep", "/a/y", "/ab", "/b/z");
    CHECK_KEYS(store, "/b/z", "/b/z");

    /* No match, and a deleted key, list nothing. */
    CHECK_OK(ckv_keys(store, KEY("/c"), &keys, &err));
    CHECK(ckv_key_list_len(keys) == 0);
    ckv_key_list_free(keys);
    CHECK_OK(ckv_keys(store, KEY("/gone"), &keys, &err));
    CHECK(ckv_key_list_len(keys) == 0);
    ckv_key_list_free(keys);
    ckv_close(store);
}

static void test_delete_prefix_counts(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    uint64_t count = 99;

    put_own_name(store, "/a");
    put_own_name(store, "/a/1");
    put_own_name(store, "/a/2");
    put_own_name(store, "/a/2/deep");
    put_own_name(store, "/ab");
    put_own_name(store, "/b");
    put_own_name(store, "/a/3");
    CHECK_OK(ckv_delete(store, KEY("/a/3"), 0, NULL, &err));

    /* Aligned: /a/1, /a/2, /a/2/deep; not /a, not /ab, not the already deleted /a/3. */
    CHECK_OK(ckv_delete_prefix(store, KEY("/a/"), &count, &err));
    CHECK(count == 3);
    CHECK_KEYS(store, "/", "/a", "/ab", "/b");

    /* Nothing left there: a second call deletes nothing. */
    CHECK_OK(ckv_delete_prefix(store, KEY("/a/"), &count, &err));
    CHECK(count == 0);

    /* Byte-wise: /a and /ab, not /b. */
    CHECK_OK(ckv_delete_prefix(store, KEY("/a"), &count, &err));
    CHECK(count == 2);
    CHECK_KEYS(store, "/", "/b");
    CHECK_OK(ckv_delete_prefix(store, KEY("/"), &count, &err));
    CHECK(count == 1);
    ckv_close(store);
}

/* ---- read_modify_write ---- */

struct counter {
    int calls;
    int saw_null;
};

/* Adds one to a decimal counter; a missing key counts as 0. */
static ckv_status increment(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    struct counter *counter = (struct counter *)user_data;
    char text[32];
    long value = 0;
    counter->calls++;
    if (current == NULL) {
        counter->saw_null++;
    } else {
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

static void test_rmw_increments(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    struct counter counter = {0, 0};
    uint64_t revision = 0, previous = 0;
    int i;

    for (i = 0; i < 25; i++) {
        CHECK_OK(ckv_read_modify_write(store, KEY("/rmw/n"), increment, &counter, &revision, &err));
        CHECK(revision > previous);
        previous = revision;
    }
    CHECK(value_is(store, "/rmw/n", "25"));
    CHECK(live_revision(store, "/rmw/n") == revision);
    /* Alone on the key, every call is one attempt; only the first saw no value. */
    CHECK(counter.calls == 25);
    CHECK(counter.saw_null == 1);
    ckv_close(store);
}

static ckv_status abort_with(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    (void)current;
    ckv_rmw_set_value(result, VAL("must not be written"));
    return *(ckv_status *)user_data;
}

static ckv_status forget_to_set(void *user_data, const ckv_entry *current,
                                ckv_rmw_result *result) {
    (void)result;
    (void)current;
    ++*(int *)user_data;
    return CKV_OK;
}

static void test_rmw_callback_abort(void) {
    static const ckv_status aborts[] = {CKV_NOT_FOUND, CKV_CANCELED, CKV_CONFLICT,
                                        CKV_UNAVAILABLE, CKV_PERMISSION_DENIED};
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    ckv_entry *entry = NULL;
    uint64_t before = 0, revision = 0, last = 0;
    ckv_status status, want;
    int calls = 0;
    size_t i;

    CHECK_OK(ckv_put(store, KEY("/rmw/k"), VAL("kept"), &before, &err));

    /* Whatever status the callback aborts with is what the caller gets back. */
    for (i = 0; i < sizeof aborts / sizeof aborts[0]; i++) {
        want = aborts[i];
        revision = 0;
        status = ckv_read_modify_write(store, KEY("/rmw/k"), abort_with, &want, &revision, &err);
        if (!CHECK_ERROR(want, status, err)) fprintf(stderr, "    aborting with %d\n", want);
        ckv_error_free(err);
        err = NULL;
        CHECK(revision == 0);
    }
    /* A number that is no ckv_status comes back as CANCELED, never as a made-up code. */
    want = 1000;
    status = ckv_read_modify_write(store, KEY("/rmw/k"), abort_with, &want, NULL, &err);
    CHECK_ERROR(CKV_CANCELED, status, err);
    CHECK(strstr(ckv_error_message(err), "1000") != NULL);
    ckv_error_free(err);
    err = NULL;

    /* CKV_OK without ckv_rmw_set_value is a caller bug: INVALID_ARGUMENT, nothing written. */
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_read_modify_write(store, KEY("/rmw/k"), forget_to_set,
                                                            &calls, &revision, &err));
    CHECK_FAILS(CKV_INVALID_ARGUMENT, ckv_read_modify_write(store, KEY("/rmw/new"), forget_to_set,
                                                            &calls, &revision, &err));
    CHECK(calls == 2);
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/rmw/new"), &entry, &err));

    CHECK(value_is(store, "/rmw/k", "kept"));
    CHECK(live_revision(store, "/rmw/k") == before);
    CHECK_OK(ckv_last_revision(store, &last, &err));
    CHECK(last == before);
    ckv_close(store);
}

/*
 * A tombstone's revision guards the write. The first time the callback runs, the key is
 * deleted (it sees NULL) and another writer re-creates and deletes it again behind its
 * back. Writing with a blind create would succeed, since there is still no live value;
 * read_modify_write must instead notice the key moved past the tombstone it read, and
 * call the callback again on the new state.
 */
struct tombstone_race {
    ckv_store *store;
    int calls;
    int nulls;
    uint64_t interloper_revision;
};

static ckv_status race_on_tombstone(void *user_data, const ckv_entry *current,
                                    ckv_rmw_result *result) {
    struct tombstone_race *race = (struct tombstone_race *)user_data;
    race->calls++;
    if (current == NULL) race->nulls++;
    if (race->calls == 1) {
        ckv_put(race->store, KEY("/rmw/t"), VAL("interloper"), NULL, NULL);
        ckv_delete(race->store, KEY("/rmw/t"), 0, &race->interloper_revision, NULL);
    }
    return ckv_rmw_set_value(result, VAL("mine"));
}

/* The same, with a concurrent re-create that stays: the callback must see it. */
static ckv_status race_recreate(void *user_data, const ckv_entry *current,
                                ckv_rmw_result *result) {
    struct tombstone_race *race = (struct tombstone_race *)user_data;
    race->calls++;
    if (current == NULL) {
        race->nulls++;
        if (race->calls == 1) {
            ckv_create(race->store, KEY("/rmw/u"), VAL("theirs"), &race->interloper_revision,
                       NULL);
        }
        return ckv_rmw_set_value(result, VAL("mine"));
    }
    if (!entry_value_is(current, "theirs")) return CKV_INTERNAL;
    return ckv_rmw_set_value(result, VAL("theirs+mine"));
}

static void test_rmw_tombstone_guards_write(void) {
    ckv_error *err = NULL;
    ckv_store *store = test_open_store("");
    struct tombstone_race race = {NULL, 0, 0, 0};
    uint64_t tombstone = 0, revision = 0;

    race.store = store;
    CHECK_OK(ckv_put(store, KEY("/rmw/t"), VAL("old"), NULL, &err));
    CHECK_OK(ckv_delete(store, KEY("/rmw/t"), 0, &tombstone, &err));
    CHECK_OK(ckv_read_modify_write(store, KEY("/rmw/t"), race_on_tombstone, &race, &revision,
                                   &err));
    CHECK(race.calls == 2);
    CHECK(race.nulls == 2);
    CHECK(race.interloper_revision > tombstone);
    CHECK(revision > race.interloper_revision);
    CHECK(value_is(store, "/rmw/t", "mine"));

    race.calls = race.nulls = 0;
    race.interloper_revision = 0;
    CHECK_OK(ckv_put(store, KEY("/rmw/u"), VAL("old"), NULL, &err));
    CHECK_OK(ckv_delete(store, KEY("/rmw/u"), 0, &tombstone, &err));
    CHECK_OK(ckv_read_modify_write(store, KEY("/rmw/u"), race_recreate, &race, &revision, &err));
    CHECK(race.calls == 2);
    CHECK(race.nulls == 1);
    CHECK(race.interloper_revision > tombstone);
    CHECK(revision > race.interloper_revision);
    CHECK(value_is(store, "/rmw/u", "theirs+mine"));
    ckv_close(store);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_put_get_revisions);
    RUN(test_create_conflict_carries_revision);
    RUN(test_update_at_stale_revision);
    RUN(test_create_over_tombstone);
    RUN(test_conditional_delete);
    RUN(test_purge_then_history);
    RUN(test_history_limit);
    RUN(test_keys_and_list_prefixes);
    RUN(test_delete_prefix_counts);
    RUN(test_rmw_increments);
    RUN(test_rmw_callback_abort);
    RUN(test_rmw_tombstone_guards_write);
    return test_finish();
}
