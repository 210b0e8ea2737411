/*
 * test_fork.c — a store handle does not survive fork().
 *
 * The child of a fork() has the parent's memory but none of its threads. A handle it
 * inherited must fail at once with CKV_CLOSED (and say fork is why) instead of waiting
 * on a thread that does not exist; a store the child opens itself must work; and the
 * parent's handle must be unaffected by what the child did. The child reports through
 * its exit code, which the parent checks with waitpid.
 *
 * Forking while another thread is busy opening and closing stores must not hand the child
 * a lock held by a thread it does not have: the children below would hang (and run.sh's
 * timeout would fail the test) if the library's tables were not fork-safe.
 *
 * ckv-test: mem-only
 * ckv-test-args: 200
 * ckv-test-valgrind-args: 0
 */
#define _POSIX_C_SOURCE 200809L
#include "ckv_test.h"

#include <pthread.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(ckv_store *inherited) {
    ckv_error *err = NULL;
    ckv_store *fresh = NULL;
    ckv_entry *entry = NULL;
    uint64_t revision = 0;
    ckv_status status;

    status = ckv_get(inherited, KEY("/fork/k"), &entry, &err);
    CHECK_ERROR(CKV_CLOSED, status, err);
    CHECK(strstr(ckv_error_message(err), "fork") != NULL);
    ckv_error_free(err);
    err = NULL;
    CHECK(entry == NULL);
    CHECK_FAILS(CKV_CLOSED, ckv_put(inherited, KEY("/fork/k"), VAL("child"), &revision, &err));
    CHECK(revision == 0);

    CHECK_OK(ckv_open("mem://", &fresh, &err));
    CHECK_OK(ckv_put(fresh, KEY("/fork/child"), VAL("mine"), &revision, &err));
    CHECK_OK(ckv_get(fresh, KEY("/fork/child"), &entry, &err));
    CHECK(entry_value_is(entry, "mine"));
    CHECK(ckv_entry_revision(entry) == revision);
    ckv_entry_free(entry);
    ckv_close(fresh);

    /* Closing the inherited handle in the child is allowed and harmless. */
    ckv_close(inherited);
    return test_finish();
}

static volatile int churn_stop = 0;

static void *churn(void *arg) {
    (void)arg;
    while (!churn_stop) {
        ckv_store *s = NULL;
        ckv_error *err = NULL;
        ckv_entry *entry = NULL;
        if (ckv_open("mem://", &s, &err) == CKV_OK) {
            ckv_put(s, KEY("/churn"), VAL("x"), NULL, NULL);
            if (ckv_get(s, KEY("/churn"), &entry, NULL) == CKV_OK) ckv_entry_free(entry);
            ckv_close(s);
        } else {
            ckv_error_free(err);
        }
    }
    return NULL;
}

static int child_under_churn(void) {
    ckv_store *fresh = NULL;
    ckv_error *err = NULL;
    uint64_t revision = 0;
    CHECK_OK(ckv_open("mem://", &fresh, &err));
    CHECK_OK(ckv_put(fresh, KEY("/fork/churn"), VAL("ok"), &revision, &err));
    ckv_close(fresh);
    return test_finish();
}

static void fork_while_other_threads_use_the_library(int forks) {
    pthread_t thread;
    int i;
    CHECK(pthread_create(&thread, NULL, churn, NULL) == 0);
    for (i = 0; i < forks; i++) {
        int wstatus = 0;
        pid_t pid;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
            ckv_test_program = "test_fork (child under churn)";
            _exit(child_under_churn());
        }
        CHECK(pid > 0);
        CHECK(waitpid(pid, &wstatus, 0) == pid);
        if (!CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
            fprintf(stderr, "    child %d wait status %d\n", i, wstatus);
            break;
        }
    }
    churn_stop = 1;
    CHECK(pthread_join(thread, NULL) == 0);
}

int main(int argc, char **argv) {
    ckv_error *err = NULL;
    ckv_store *store = NULL;
    ckv_entry *entry = NULL;
    uint64_t before = 0, after = 0;
    int wstatus = 0;
    pid_t pid;

    test_init(argc, argv);
    CHECK_OK(ckv_open("mem://", &store, &err));
    CHECK_OK(ckv_put(store, KEY("/fork/k"), VAL("parent"), &before, &err));

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        ckv_test_program = "test_fork (child)";
        exit(child(store));
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &wstatus, 0) == pid);
    CHECK(WIFEXITED(wstatus));
    if (!CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
        fprintf(stderr, "    child wait status %d\n", wstatus);
    }

    /* The parent's handle still works, and the child's writes never reached it. */
    CHECK_OK(ckv_get(store, KEY("/fork/k"), &entry, &err));
    CHECK(entry_value_is(entry, "parent"));
    ckv_entry_free(entry);
    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store, KEY("/fork/child"), &entry, &err));
    CHECK_OK(ckv_put(store, KEY("/fork/k"), VAL("parent again"), &after, &err));
    CHECK(after > before);
    ckv_close(store);

    /* Under valgrind (0 forks) the churn thread's objects would be reported lost in children. */
    if (argc > 3 && atoi(argv[3]) > 0) fork_while_other_threads_use_the_library(atoi(argv[3]));
    return test_finish();
}
