/* What the C tests that run an embedded cluster share: the CHECK / REQUIRE / EXPECT_ERROR /
 * EVENTUALLY macros, free loopback ports, and a cluster of `founders` nodes (ids 1..founders,
 * each voter listing them all) with room for nodes that join later. Include after
 * `#define _GNU_SOURCE`. Every function is `static inline`, so a test uses what it needs. */
#ifndef JK_TEST_CLUSTER_H
#define JK_TEST_CLUSTER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "journalkeeper.h"

#define TC_CLUSTER_ID 42
#define TC_MAX_NODES 8
/* The bound of every wait in the tests. */
#define TC_WAIT_MS 60000

/* `call` succeeds; else the test exits naming it, its status and its message. `call` passes
 * ERR as its err_out. */
#define CHECK(call)                                                                            \
    do {                                                                                       \
        jk_error *err_ = NULL;                                                                 \
        jk_status st_ = (call);                                                                \
        if (st_ != JK_STATUS_OK) {                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,           \
                    jk_status_code(st_), err_ ? jk_error_message(err_) : "");                  \
            jk_error_free(err_);                                                               \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
#define ERR (&err_)
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: %s does not hold\n", __FILE__, __LINE__, #cond);           \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
/* `call` fails with status `want`, and its error object agrees and has a message containing
 * `part`. */
#define EXPECT_ERROR(want, part, call)                                                         \
    do {                                                                                       \
        jk_error *err_ = NULL;                                                                 \
        jk_status st_ = (call);                                                                \
        const char *msg_ = err_ ? jk_error_message(err_) : NULL;                               \
        if (st_ != (want) || err_ == NULL || jk_error_status(err_) != st_ ||                   \
            strstr(msg_, (part)) == NULL) {                                                    \
            fprintf(stderr, "%s:%d: %s returned %s (%s), expected %s with \"%s\"\n", __FILE__, \
                    __LINE__, #call, jk_status_code(st_), msg_ ? msg_ : "no error object",     \
                    jk_status_code(want), (part));                                             \
            exit(1);                                                                           \
        }                                                                                      \
        jk_error_free(err_);                                                                   \
    } while (0)

static inline int tc_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline long long tc_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Polls `cond` (state the library holds, with no event to wait on) every 10 ms until it holds
 * or TC_WAIT_MS pass (then exits naming it). */
#define EVENTUALLY(cond)                                                                       \
    do {                                                                                       \
        long long until_ = tc_now_ms() + TC_WAIT_MS;                                           \
        while (!(cond)) {                                                                      \
            if (tc_now_ms() > until_) {                                                        \
                fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond); \
                exit(1);                                                                       \
            }                                                                                  \
            usleep(10000);                                                                     \
        }                                                                                      \
    } while (0)

/* Nodes 1..`nodes` on loopback ports under a temporary directory; node i+1 is index i. */
typedef struct {
    char root[64];
    int nodes;
    int founders;
    char addrs[TC_MAX_NODES][32];
    char dirs[TC_MAX_NODES][96];
    /* The founders (ids 1..founders) with their addresses. */
    jk_peer peers[TC_MAX_NODES];
    /* NULL until started, and again after tc_cluster_stop_node. */
    jk_server *servers[TC_MAX_NODES];
} tc_cluster;

/* Picks addresses and data directories for `nodes` nodes (under /tmp/jk-<name>-XXXXXX) and
 * starts the first `founders` as one cluster; returns once node 1 knows a leader. */
static inline void tc_cluster_start(tc_cluster *c, const char *name, int nodes, int founders) {
    REQUIRE(founders >= 1 && founders <= nodes && nodes <= TC_MAX_NODES);
    memset(c, 0, sizeof *c);
    snprintf(c->root, sizeof c->root, "/tmp/jk-%s-XXXXXX", name);
    if (mkdtemp(c->root) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    c->nodes = nodes;
    c->founders = founders;
    for (int i = 0; i < nodes; i++) {
        snprintf(c->addrs[i], sizeof c->addrs[i], "127.0.0.1:%d", tc_free_port());
        snprintf(c->dirs[i], sizeof c->dirs[i], "%s/node%d", c->root, i + 1);
        if (i < founders) {
            c->peers[i] = (jk_peer){.node_id = (uint64_t)i + 1, .addr = c->addrs[i]};
        }
    }
    for (int i = 0; i < founders; i++) {
        jk_server_config cfg = {
            .node_id = (uint64_t)i + 1,
            .listen = c->addrs[i],
            .cluster_id = TC_CLUSTER_ID,
            .data_dir = c->dirs[i],
            .peers = c->peers,
            .peers_len = (size_t)founders,
        };
        CHECK(jk_server_start(&cfg, &c->servers[i], ERR));
    }
    CHECK(jk_server_wait_for_leader(c->servers[0], TC_WAIT_MS, NULL, ERR));
}

/* The founders' addresses, for jk_client_connect (valid while `c` is). */
static inline void tc_founder_addrs(const tc_cluster *c, const char **out) {
    for (int i = 0; i < c->founders; i++) {
        out[i] = c->addrs[i];
    }
}

/* Stops and frees node `i` (index, not id) if it runs. */
static inline void tc_cluster_stop_node(tc_cluster *c, int i) {
    if (c->servers[i] != NULL) {
        CHECK(jk_server_stop(c->servers[i], ERR));
        jk_server_free(c->servers[i]);
        c->servers[i] = NULL;
    }
}

/* Stops and frees every node still running and removes the data directories. */
static inline void tc_cluster_stop(tc_cluster *c) {
    for (int i = 0; i < c->nodes; i++) {
        tc_cluster_stop_node(c, i);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", c->root);
    }
}

#endif
