/*
 * test_lease_lost.c — the lease-lost notification from C when the NATS server is gone for
 * longer than the TTL, and the lease's keys gone once it is back (issue 11; the Rust
 * version is tests/nats_leases.rs, a_lease_is_lost_while_the_server_is_down_...).
 *
 * The test needs a server it may kill, so it starts its own: the executable named by
 * NATS_SERVER_BIN (tests/support/natsd.py exports it; `make test` runs run.sh under it),
 * started as  -js -p <free port> -sd <temp dir> -a 127.0.0.1, killed with SIGKILL (a
 * crash: no flush, no goodbye) and started again on the same port and store dir.
 *
 * It runs in the NATS run of run.sh (natively and under valgrind) and ignores that run's
 * server URL. The mem:// run says it is skipped and passes: the NATS run does the work,
 * and run.sh itself fails under COORDKV_REQUIRE_NATS=1 when there is no NATS run. In the
 * NATS run, a missing NATS_SERVER_BIN skips the test, unless COORDKV_REQUIRE_NATS=1,
 * which fails it.
 *
 * The store is opened as in the Rust test, with "request_timeout_ms": 500 (an optional
 * third argument changes it) and "marker_ttl_ms": 1000, on a bucket made beforehand with
 * the default timeout (under valgrind, making it takes longer than 500 ms). The lease is
 * granted for 2000 ms with a `lost` callback and three keys are attached to it. Then the
 * server is killed; ckv_lease_wait_lost must return within 30 s, and the callback must
 * have run exactly once with a reason. The callback is waited for on its own: the library
 * wakes ckv_lease_wait_lost before it calls the callbacks on its keepalive thread. Then
 * the server is started again; the keys must answer NOT_FOUND within 30 s, and a write
 * with the lease CKV_LEASE_NOT_FOUND. The private server is killed with the test (Linux:
 * PR_SET_PDEATHSIG), whatever ends it.
 *
 * Delays are printed, never asserted; the waits are bounded (30 s each).
 */
#define _XOPEN_SOURCE 700
#include "ckv_test.h"
#include "lease_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define WAIT_MS 30000
#define LEASE_TTL_MS 2000

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- a private nats-server ------------------------------------------------------- */

struct server {
    const char *binary;
    char dir[256];
    char port[16];
    char url[64];
    pid_t pid;
};

/* A port the OS calls free now (the server binds it a moment later, as natsd.py does). */
static int free_port(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

/* Whether the server answers on its port with its INFO line. */
static int server_says_info(const struct server *server) {
    struct sockaddr_in addr;
    struct timeval timeout = {1, 0};
    char buf[4];
    size_t got = 0;
    int ok = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)atoi(server->port));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        while (got < sizeof buf) {
            ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
            if (n <= 0) break;
            got += (size_t)n;
        }
        ok = got == sizeof buf && memcmp(buf, "INFO", 4) == 0;
    }
    close(fd);
    return ok;
}

/* Starts the server (again) on its port and store dir; 0 once it answers. */
static int server_spawn(struct server *server) {
    char *argv[] = {(char *)server->binary, "-js", "-p", server->port, "-sd", server->dir,
                    "-a", "127.0.0.1", NULL};
    double deadline = now_ms() + 20000;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the library has threads. */
#ifdef __linux__
        /* Never outlive the test, whatever ends it (the fork is made by the main thread,
         * which lives until the test exits). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execv(server->binary, argv);
        _exit(127);
    }
    server->pid = pid;
    while (now_ms() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "%s: %s exited early (status %d)\n", ckv_test_program,
                    server->binary, status);
            server->pid = 0;
            return -1;
        }
        if (server_says_info(server)) return 0;
        sleep_ms(25);
    }
    fprintf(stderr, "%s: %s did not listen on port %s in time\n", ckv_test_program,
            server->binary, server->port);
    return -1;
}

/* SIGKILL: a crash. */
static void server_kill(struct server *server) {
    if (server->pid > 0) {
        kill(server->pid, SIGKILL);
        waitpid(server->pid, NULL, 0);
        server->pid = 0;
    }
}

static int server_start(struct server *server, const char *binary) {
    int port = free_port();
    memset(server, 0, sizeof *server);
    server->binary = binary;
    snprintf(server->dir, sizeof server->dir, "%s/ckv-lease-lost-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (port <= 0 || mkdtemp(server->dir) == NULL) {
        perror("free port or mkdtemp");
        server->dir[0] = '\0';
        return -1;
    }
    snprintf(server->port, sizeof server->port, "%d", port);
    snprintf(server->url, sizeof server->url, "nats://127.0.0.1:%d", port);
    return server_spawn(server);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void server_stop(struct server *server) {
    server_kill(server);
    if (server->dir[0] != '\0') nftw(server->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the test ---------------------------------------------------------------------- */

static const char *server_binary;
static long request_timeout_ms = 500;

/* Polls `key` until the store says NOT_FOUND (any other failure — the client still
 * reconnecting — is retried); returns whether it did within `timeout_ms`. */
static int wait_not_found(ckv_store *store, const char *key, long timeout_ms) {
    double deadline = now_ms() + timeout_ms;
    ckv_status last = CKV_OK;
    char message[256] = "";
    for (;;) {
        ckv_entry *entry = NULL;
        ckv_error *err = NULL;
        last = ckv_get(store, KEY(key), &entry, &err);
        ckv_entry_free(entry);
        if (err) snprintf(message, sizeof message, "%s", ckv_error_message(err));
        ckv_error_free(err);
        if (last == CKV_NOT_FOUND) return 1;
        if (now_ms() >= deadline) break;
        sleep_ms(100);
    }
    fprintf(stderr, "    %s still answers %s %s\n", key, ckv_status_name(last),
            last == CKV_OK ? "(the key is there)" : message);
    return 0;
}

static void test_a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after(void) {
    struct server server;
    if (server_start(&server, server_binary) != 0) {
        CHECK(!"start a private nats-server");
        server_stop(&server);
        return;
    }
    ckv_error *err = NULL;
    char json[512];
    ckv_store *store = NULL;
    /* The bucket is made first with the default request timeout: under valgrind making
     * it takes longer than 500 ms. */
    snprintf(json, sizeof json, "{\"url\":\"%s\",\"bucket\":\"%s\",\"marker_ttl_ms\":1000}",
             server.url, ckv_test_bucket_prefix);
    if (!CHECK_OK(ckv_open_config(json, &store, &err))) {
        server_stop(&server);
        return;
    }
    ckv_close(store);
    store = NULL;
    snprintf(json, sizeof json,
             "{\"url\":\"%s\",\"bucket\":\"%s\",\"request_timeout_ms\":%ld,"
             "\"marker_ttl_ms\":1000}",
             server.url, ckv_test_bucket_prefix, request_timeout_ms);
    if (!CHECK_OK(ckv_open_config(json, &store, &err))) {
        server_stop(&server);
        return;
    }
    printf("store: %s\n", json);
    struct lost_log log;
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    pthread_cond_init(&log.changed, NULL);
    ckv_lease_options lo;
    ckv_lease_options_init(&lo);
    lo.lost = on_lost;
    lo.user_data = &log;
    ckv_lease *lease = NULL;
    ckv_status granted = ckv_lease_grant(store, LEASE_TTL_MS, &lo, &lease, &err);
    if (granted == CKV_UNSUPPORTED) {
        /* A server without per-message TTLs (before 2.11.2) must say which it needs. */
        CHECK(strstr(ckv_error_message(err), "2.11.2") != NULL);
        printf("%s: skipped: no leases on this server: %s\n", ckv_test_program,
               ckv_error_message(err));
        ckv_error_free(err);
        ckv_close(store);
        server_stop(&server);
        return;
    }
    if (!CHECK_OK(granted)) {
        ckv_close(store);
        server_stop(&server);
        return;
    }
    uint64_t id = ckv_lease_id(lease);
    CHECK(id > 0 && ckv_lease_ttl_ms(lease) >= LEASE_TTL_MS);
    const char *keys[] = {"/l/0", "/l/1", "/l/2"};
    for (int i = 0; i < 3; i++) put_leased(store, keys[i], id);
    CHECK(ckv_lease_wait_lost(lease, 500) == CKV_TIMEOUT);
    CHECK(!ckv_lease_is_lost(lease));
    pthread_mutex_lock(&log.lock);
    CHECK(log.calls == 0);
    pthread_mutex_unlock(&log.lock);

    double killed = now_ms();
    server_kill(&server);
    CHECK(ckv_lease_wait_lost(lease, WAIT_MS) == CKV_OK);
    double lost_after = now_ms() - killed;
    CHECK(ckv_lease_is_lost(lease));
    CHECK(wait_for_callback(&log, 5000) == 1);
    double called_after = now_ms() - killed;
    pthread_mutex_lock(&log.lock);
    CHECK(log.calls == 1 && log.id == id);
    CHECK(strstr(log.reason, "could not be renewed") != NULL);
    printf("lease lost %.0f ms after the server went down (callback by %.0f ms; TTL %llu ms): "
           "%s\n",
           lost_after, called_after, (unsigned long long)ckv_lease_ttl_ms(lease), log.reason);
    pthread_mutex_unlock(&log.lock);

    double restarted = now_ms();
    if (!CHECK(server_spawn(&server) == 0)) {
        ckv_lease_free(lease);
        ckv_close(store);
        server_stop(&server);
        return;
    }
    printf("server back %.0f ms after the kill\n", now_ms() - killed);
    /* The server expires what outlived its TTL during the outage (on recovery). */
    for (int i = 0; i < 3; i++) CHECK(wait_not_found(store, keys[i], WAIT_MS));
    printf("keys gone %.0f ms after the restart\n", now_ms() - restarted);
    ckv_write_options w;
    ckv_write_options_init(&w);
    w.lease = id;
    CHECK_FAILS(CKV_LEASE_NOT_FOUND,
                ckv_put_with(store, KEY("/l/late"), VAL("x"), &w, NULL, &err));

    ckv_lease_free(lease);
    ckv_close(store);
    pthread_mutex_lock(&log.lock);
    CHECK(log.calls == 1); /* exactly once, also across the close */
    pthread_mutex_unlock(&log.lock);
    pthread_cond_destroy(&log.changed);
    pthread_mutex_destroy(&log.lock);
    server_stop(&server);
}

int main(int argc, char **argv) {
    const char *require = getenv("COORDKV_REQUIRE_NATS");
    test_init(argc, argv);
    server_binary = getenv("NATS_SERVER_BIN");
    if (argc > 3) request_timeout_ms = atol(argv[3]);
    if (test_on_mem()) {
        printf("%s: skipped on %s: it starts a NATS server of its own in the NATS run\n",
               ckv_test_program, ckv_test_url);
        return test_finish();
    }
    if (server_binary == NULL || server_binary[0] == '\0') {
        if (require != NULL && strcmp(require, "1") == 0) {
            CHECK(!"COORDKV_REQUIRE_NATS=1 but NATS_SERVER_BIN is not set");
        } else {
            printf("%s: skipped: NATS_SERVER_BIN is not set (tests/support/natsd.py sets it)\n",
                   ckv_test_program);
        }
        return test_finish();
    }
    RUN(test_a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after);
    return test_finish();
}
