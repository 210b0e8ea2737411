/*
 * quickstart.c — a first session with coordkv from C.
 *
 * It opens an in-process store (mem://, nothing to install), then walks through what
 * coordination code does all day: write and read a key, try to claim a key someone
 * else holds, lose a compare-and-swap race and retry at the revision the error hands
 * back, bump a counter with read_modify_write, and list the keys under a prefix.
 *
 * Build and run it with examples/quickstart.sh, or by hand:
 *   cargo build
 *   cc -std=c99 -Iinclude examples/quickstart.c -Ltarget/debug -lcoordkv \
 *      -Wl,-rpath,$PWD/target/debug -o quickstart && ./quickstart
 * Swap "mem://" for "nats://127.0.0.1:4222" and the same program runs on NATS JetStream.
 */
#include "coordkv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every coordkv call returns a ckv_status; on failure the optional last argument
 * receives a ckv_error whose message says what went wrong. This demo stops at the first
 * unexpected failure; real code would handle it.
 */
static void must(ckv_status status, ckv_error *err, const char *what) {
    if (status != CKV_OK) {
        fprintf(stderr, "%s failed: %s\n", what, ckv_error_message(err));
        ckv_error_free(err);
        exit(1);
    }
}

/* Keys and values are (pointer, length) pairs; these spell a C string that way. */
#define KEY(s) (s), strlen(s)
#define VAL(s) (const uint8_t *)(s), strlen(s)

/* read_modify_write calls this with the key's current entry (NULL if it has none) and
 * writes what it sets. If another writer got there first, coordkv calls it again with
 * the newer entry, so the function must only compute, never assume it runs once. */
static ckv_status add_one(void *user_data, const ckv_entry *current, ckv_rmw_result *result) {
    char text[32];
    long count = 0;
    (void)user_data;
    if (current != NULL) {
        size_t len = 0;
        const uint8_t *value = ckv_entry_value(current, &len);
        if (len >= sizeof text) return CKV_CANCELED; /* not a counter: give up */
        memcpy(text, value, len);
        text[len] = '\0';
        count = strtol(text, NULL, 10);
    }
    snprintf(text, sizeof text, "%ld", count + 1);
    return ckv_rmw_set_value(result, VAL(text));
}

int main(void) {
    ckv_store *store = NULL;
    ckv_error *err = NULL;
    ckv_entry *entry = NULL;
    ckv_key_list *keys = NULL;
    uint64_t rev = 0, seen = 0, newer = 0;
    ckv_status status;
    char line[64];
    size_t len, i;
    int visit;

    printf("coordkv %s\n", ckv_version());
    must(ckv_open("mem://", &store, &err), err, "open");

    /* 1. put returns the revision of the write: one increasing counter for the store. */
    must(ckv_put(store, KEY("/config/greeting"), VAL("hello"), &rev, &err), err, "put");
    printf("%-44s -> revision %llu\n", "put    /config/greeting = hello", (unsigned long long)rev);

    /* 2. get hands back an entry we own and free; its value is bytes plus a length. */
    must(ckv_get(store, KEY("/config/greeting"), &entry, &err), err, "get");
    {
        const uint8_t *value = ckv_entry_value(entry, &len);
        seen = ckv_entry_revision(entry);
        printf("%-44s -> %.*s (revision %llu)\n", "get    /config/greeting", (int)len,
               (const char *)value, (unsigned long long)seen);
    }
    ckv_entry_free(entry);

    /* 3. create only writes a key that has no value: the building block of a lock.
     *    Here the key exists, so it is refused, and the error says at which revision. */
    status = ckv_create(store, KEY("/config/greeting"), VAL("hi"), NULL, &err);
    printf("%-44s -> %s, current revision %llu\n", "create /config/greeting = hi",
           ckv_status_name(status), (unsigned long long)ckv_error_current_revision(err));
    ckv_error_free(err);
    err = NULL;

    /* 4. update is compare-and-swap: it writes only if the key is still at the revision
     *    we read. Another writer changes it first, so our update at `seen` is refused... */
    must(ckv_put(store, KEY("/config/greeting"), VAL("bonjour"), &newer, &err), err, "put");
    printf("%-44s -> revision %llu\n", "put    /config/greeting = bonjour (a rival)",
           (unsigned long long)newer);
    status = ckv_update(store, KEY("/config/greeting"), VAL("hello, world"), seen, NULL, &err);
    snprintf(line, sizeof line, "update /config/greeting if at revision %llu",
             (unsigned long long)seen);
    printf("%-44s -> %s, current revision %llu\n", line, ckv_status_name(status),
           (unsigned long long)ckv_error_current_revision(err));
    /*    ...and the error carries the revision to retry at, without another read. */
    seen = ckv_error_current_revision(err);
    ckv_error_free(err);
    err = NULL;
    must(ckv_update(store, KEY("/config/greeting"), VAL("hello, world"), seen, &rev, &err), err,
         "update");
    snprintf(line, sizeof line, "update /config/greeting if at revision %llu",
             (unsigned long long)seen);
    printf("%-44s -> OK, revision %llu\n", line, (unsigned long long)rev);

    /* 5. read_modify_write runs that read / compute / compare-and-swap loop for you. */
    for (visit = 0; visit < 3; visit++) {
        must(ckv_read_modify_write(store, KEY("/stats/visits"), add_one, NULL, &rev, &err), err,
             "read_modify_write");
    }
    must(ckv_get(store, KEY("/stats/visits"), &entry, &err), err, "get");
    {
        const uint8_t *value = ckv_entry_value(entry, &len);
        printf("%-44s -> %.*s (revision %llu)\n", "read_modify_write /stats/visits +1, 3 times",
               (int)len, (const char *)value, (unsigned long long)rev);
    }
    ckv_entry_free(entry);

    /* 6. keys lists the live keys under a prefix, sorted. A prefix ending in '/' means
     *    "inside this directory"; without it, any key starting with those bytes. */
    must(ckv_put(store, KEY("/config/timeout"), VAL("30s"), NULL, &err), err, "put");
    must(ckv_put(store, KEY("/configuration-notes"), VAL("not config"), NULL, &err), err, "put");
    must(ckv_keys(store, KEY("/config/"), &keys, &err), err, "keys");
    printf("%-44s ->", "keys   /config/");
    for (i = 0; i < ckv_key_list_len(keys); i++) printf(" %s", ckv_key_list_get(keys, i, NULL));
    printf("\n");
    ckv_key_list_free(keys);

    ckv_close(store);
    return 0;
}
