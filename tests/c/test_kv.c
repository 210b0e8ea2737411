/*
 * test_kv.c — the key-value contract of docs/design.md, as a C program sees it.
 *
 * The contract itself is the shared scenarios of tests/vectors/ops.json, which the Rust,
 * Python and Go suites run too: run.sh turns them into build/ops_vectors.h
 * (gen_ops_vectors.py) and run_scenario() below makes each call through the C ABI. What
 * only C can get wrong stays here: a read_modify_write callback's own status, and its
 * retry when another writer moves the key from inside the callback. run.sh runs it on
 * mem:// and, when COORDKV_TEST_NATS_URL is set, on NATS as well, natively, statically
 * linked and under valgrind.
 */
#include "ckv_test.h"
#include "ops_vectors.h"

#include <time.h>

/* How far the server's clock may be from ours when it stamps an entry. */
#define CLOCK_SLACK_NS UINT64_C(5000000000)

static uint64_t now_ns(void) { return (uint64_t)time(NULL) * UINT64_C(1000000000); }

static int value_is(ckv_store *store, const char *key, const char *text) {
    ckv_entry *entry = NULL;
    int same = 0;
    if (ckv_get(store, KEY(key), &entry, NULL) == CKV_OK) {
        same = entry_value_is(entry, text);
        ckv_entry_free(entry);
    }
    return same;
}

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

/* ---- the shared scenarios ---- */

/* One run of one scenario: the revisions its writes named, and what it has seen. */
struct ops_run {
    ckv_store *store;
    uint64_t named[OPS_MAX_SLOTS + 1];
    uint64_t latest;
    uint64_t started_ns;
};

/* What read_modify_write's function was given, against what the step says it must be. */
struct ops_modify {
    const struct ops_step *step;
    int calls;
    int saw_right;
};

static int bytes_are(const void *bytes, size_t len, const struct ops_bytes *want) {
    return len == want->len && (len == 0 || memcmp(bytes, want->bytes, len) == 0);
}

static uint64_t revision_of(const struct ops_run *run, const struct ops_rev *rev) {
    return rev->slot > 0 ? run->named[rev->slot] : rev->number;
}

static ckv_status ops_modify(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    struct ops_modify *modify = (struct ops_modify *)user_data;
    const struct ops_step *step = modify->step;
    size_t len = 0;
    modify->calls++;
    if (current == NULL) {
        modify->saw_right = step->saw == OPS_SAW_NOTHING;
    } else {
        const uint8_t *value = ckv_entry_value(current, &len);
        modify->saw_right = step->saw == OPS_SAW_VALUE && bytes_are(value, len, &step->saw_value);
    }
    return ckv_rmw_set_value(result, (const uint8_t *)step->value.bytes, step->value.len);
}

static void check_entry(const struct ops_run *run, const ckv_entry *got,
                        const struct ops_entry *want) {
    size_t len = 0;
    const char *key = ckv_entry_key(got, &len);
    const uint8_t *value;
    uint64_t stamp = ckv_entry_timestamp_ns(got);
    CHECK(key != NULL && bytes_are(key, len, &want->key));
    value = ckv_entry_value(got, &len);
    CHECK(value != NULL && bytes_are(value, len, &want->value));
    CHECK(ckv_entry_revision(got) == revision_of(run, &want->rev));
    CHECK(strcmp(ckv_operation_name(ckv_entry_operation(got)), want->op) == 0);
    CHECK(stamp >= run->started_ns - CLOCK_SLACK_NS);
    CHECK(stamp <= now_ns() + UINT64_C(1000000000) + CLOCK_SLACK_NS);
}

static void check_entries(const struct ops_run *run, const ckv_entry_list *list,
                          const struct ops_step *step) {
    size_t i;
    CHECK(ckv_entry_list_len(list) == step->n_entries);
    for (i = 0; i < step->n_entries && i < ckv_entry_list_len(list); i++) {
        check_entry(run, ckv_entry_list_get(list, i), &step->entries[i]);
    }
}

static void check_keys(const ckv_key_list *keys, const struct ops_step *step) {
    size_t i, len = 0;
    CHECK(ckv_key_list_len(keys) == step->n_keys);
    for (i = 0; i < step->n_keys && i < ckv_key_list_len(keys); i++) {
        const char *key = ckv_key_list_get(keys, i, &len);
        CHECK(key != NULL && bytes_are(key, len, &step->keys[i]));
    }
}

/* A failure: the step's status, by the library's name, its message and current revision. */
static void check_failure(const struct ops_run *run, const struct ops_step *step,
                          ckv_status status, const ckv_error *err) {
    const char *message = ckv_error_message(err); /* "" for no error */
    size_t name_len = strlen(step->status);
    int failures_before = ckv_test_failures;
    CHECK(strcmp(ckv_status_name(status), step->status) == 0);
    CHECK(err != NULL && ckv_error_status(err) == status);
    CHECK(strncmp(message, step->status, name_len) == 0 && message[name_len] == ':');
    CHECK(strstr(message, step->message_has) != NULL);
    CHECK(ckv_error_current_revision(err) == revision_of(run, &step->current));
    if (ckv_test_failures != failures_before) {
        fprintf(stderr, "    returned %s, message: %s\n", ckv_status_name(status), message);
    }
}

/* Makes the step's call and checks its outcome. */
static void run_step(struct ops_run *run, const struct ops_step *step) {
    ckv_store *store = run->store;
    ckv_error *err = NULL;
    ckv_entry *entry = NULL;
    ckv_entry_list *list = NULL;
    ckv_key_list *keys = NULL;
    struct ops_modify modify = {NULL, 0, 0};
    const char *op = step->op, *k = step->key.bytes;
    const uint8_t *v = (const uint8_t *)step->value.bytes;
    size_t kn = step->key.len, vn = step->value.len;
    uint64_t rev = revision_of(run, &step->rev), written = 0, number = 0;
    ckv_status status = CKV_OK;
    int write = 1;

    modify.step = step;
    if (strcmp(op, "put") == 0) status = ckv_put(store, k, kn, v, vn, &written, &err);
    else if (strcmp(op, "create") == 0) status = ckv_create(store, k, kn, v, vn, &written, &err);
    else if (strcmp(op, "update") == 0) status = ckv_update(store, k, kn, v, vn, rev, &written, &err);
    else if (strcmp(op, "delete") == 0) status = ckv_delete(store, k, kn, rev, &written, &err);
    else if (strcmp(op, "purge") == 0) status = ckv_purge(store, k, kn, &written, &err);
    else if (strcmp(op, "read_modify_write") == 0)
        status = ckv_read_modify_write(store, k, kn, ops_modify, &modify, &written, &err);
    else {
        write = 0;
        if (strcmp(op, "get") == 0) status = ckv_get(store, k, kn, &entry, &err);
        else if (strcmp(op, "list") == 0) status = ckv_list(store, k, kn, &list, &err);
        else if (strcmp(op, "history") == 0) status = ckv_history(store, k, kn, &list, &err);
        else if (strcmp(op, "keys") == 0) status = ckv_keys(store, k, kn, &keys, &err);
        else if (strcmp(op, "delete_prefix") == 0)
            status = ckv_delete_prefix(store, k, kn, &number, &err);
        else if (strcmp(op, "last_revision") == 0) status = ckv_last_revision(store, &number, &err);
        else if (strcmp(op, "close") == 0) ckv_close(store);
        else CHECK(!"an op this runner knows");
    }

    CHECK(modify.calls == (step->saw == OPS_NOT_CALLED ? 0 : 1));
    CHECK(modify.calls == 0 || modify.saw_right);
    if (status != CKV_OK || strcmp(step->status, "OK") != 0) {
        check_failure(run, step, status, err);
    } else if (write) {
        CHECK(written > run->latest);
        run->latest = written;
        run->named[step->as] = written; /* slot 0 is the unused one */
    } else if (entry != NULL) {
        CHECK(step->n_entries == 1);
        check_entry(run, entry, &step->entries[0]);
    } else if (list != NULL) {
        check_entries(run, list, step);
    } else if (keys != NULL) {
        check_keys(keys, step);
    } else {
        CHECK(number == revision_of(run, &step->number));
    }
    ckv_error_free(err);
    ckv_entry_free(entry);
    ckv_entry_list_free(list);
    ckv_key_list_free(keys);
}

static void run_scenario(const struct ops_scenario *scenario) {
    struct ops_run run;
    size_t i;
    memset(&run, 0, sizeof run);
    run.store = test_open_store(scenario->config);
    run.started_ns = now_ns();
    for (i = 0; i < scenario->n_steps; i++) {
        int failures_before = ckv_test_failures;
        run_step(&run, &scenario->steps[i]);
        if (ckv_test_failures != failures_before) {
            fprintf(stderr, "    (scenario %s, step %zu: %s)\n", scenario->name, i,
                    scenario->steps[i].json);
            break; /* later steps build on this one */
        }
    }
    ckv_close(run.store); /* a no-op after a "close" step */
}

static void test_shared_scenarios(void) {
    size_t i;
    CHECK(N_OPS_SCENARIOS > 0);
    for (i = 0; i < N_OPS_SCENARIOS; i++) run_scenario(&OPS_SCENARIOS[i]);
}

/* ---- read_modify_write callbacks ---- */

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
    RUN(test_shared_scenarios);
    RUN(test_rmw_callback_abort);
    RUN(test_rmw_tombstone_guards_write);
    return test_finish();
}
