/* A bank replicated by a 3-node embedded cluster in one process, its state machine written in
 * C (bank_machine.h): deposits and transfers, the leader stopped mid-way, more transfers on
 * the two survivors, then every surviving node must hold the same balances and the total must
 * be conserved. Exits non-zero on any mismatch. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bank_machine.h"

#define CLUSTER_ID 7
#define WAIT_MS 60000

static void check(jk_status st, jk_error *err, const char *what) {
    if (st != JK_STATUS_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, jk_status_code(st), err ? jk_error_message(err) : "");
        exit(1);
    }
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static jk_bytes text(const char *s) { return (jk_bytes){.data = (const uint8_t *)s, .len = strlen(s)}; }

static void run(jk_client *c, const char *cmd) {
    jk_error *err = NULL;
    jk_buffer *r = NULL;
    check(jk_sm_update(c, "bank", text(cmd), JK_RESPONSE_CONFIG_REPLICATION, &r, &err), err, cmd);
    printf("%-26s -> %.*s\n", cmd, (int)r->len, (const char *)r->data);
    jk_buffer_free(r);
}

static jk_server_info status(jk_server *s) {
    jk_error *err = NULL;
    jk_server_info info;
    check(jk_server_status(s, &info, &err), err, "jk_server_status");
    return info;
}

int main(void) {
    char root[] = "/tmp/jk-bank-XXXXXX";
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char addrs[3][32], dirs[3][64];
    jk_peer peers[3];
    jk_server *servers[3];
    jk_error *err = NULL;
    for (int i = 0; i < 3; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", free_port());
        snprintf(dirs[i], sizeof dirs[i], "%s/node%d", root, i + 1);
        peers[i] = (jk_peer){.node_id = (uint64_t)i + 1, .addr = addrs[i]};
    }
    for (int i = 0; i < 3; i++) {
        jk_server_config cfg = {.node_id = (uint64_t)i + 1, .listen = addrs[i], .cluster_id = CLUSTER_ID,
                                .data_dir = dirs[i], .peers = peers, .peers_len = 3};
        jk_state_machine m = bank_machine("bank", NULL);
        check(jk_server_start_with_machines(&cfg, &m, 1, &servers[i], &err), err, "jk_server_start_with_machines");
    }
    uint64_t leader = 0;
    check(jk_server_wait_for_leader(servers[0], WAIT_MS, &leader, &err), err, "jk_server_wait_for_leader");
    const char *all[3] = {addrs[0], addrs[1], addrs[2]};
    jk_client *client = NULL;
    check(jk_client_connect(all, 3, CLUSTER_ID, &client, &err), err, "jk_client_connect");

    run(client, "deposit alice 100");
    run(client, "deposit bob 50");
    run(client, "transfer alice bob 30");
    jk_buffer *r = NULL;
    jk_status st = jk_sm_update(client, "bank", text("transfer carol alice 1"), JK_RESPONSE_CONFIG_REPLICATION, &r, &err);
    if (st != JK_STATUS_REJECTED) {
        fprintf(stderr, "an overdraft was not refused: %s\n", jk_status_code(st));
        return 1;
    }
    printf("%-26s -> refused: %s\n", "transfer carol alice 1", jk_error_message(err));
    jk_error_free(err);
    err = NULL;

    printf("stopping the leader, node %" PRIu64 "\n", leader);
    check(jk_server_stop(servers[leader - 1], &err), err, "jk_server_stop");
    run(client, "transfer bob carol 40");
    run(client, "deposit carol 5");
    run(client, "transfer carol alice 15");

    /* Every survivor applies everything the new leader committed, then answers locally. */
    int survivor = leader == 1 ? 1 : 0;
    uint64_t new_leader = 0;
    check(jk_server_wait_for_leader(servers[survivor], WAIT_MS, &new_leader, &err), err, "jk_server_wait_for_leader");
    uint64_t committed = status(servers[new_leader - 1]).commit_index;
    char first[1024] = "";
    int failures = 0;
    for (int i = 0; i < 3; i++) {
        if ((uint64_t)i + 1 == leader) {
            continue;
        }
        long long until = now_ms() + WAIT_MS;
        while (status(servers[i]).applied_index < committed) {
            if (now_ms() > until) {
                fprintf(stderr, "node %d did not apply index %" PRIu64 "\n", i + 1, committed);
                return 1;
            }
            usleep(10000);
        }
        jk_client *one = NULL;
        check(jk_client_connect(&all[i], 1, CLUSTER_ID, &one, &err), err, "jk_client_connect");
        jk_buffer *b = NULL;
        check(jk_sm_query(one, "bank", text("balances"), JK_QUERY_CONSISTENCY_NONE, &b, &err), err, "jk_sm_query");
        char got[1024];
        snprintf(got, sizeof got, "%.*s", (int)b->len, (const char *)b->data);
        jk_buffer_free(b);
        jk_client_free(one);
        printf("node %d:\n%s", i + 1, got);
        if (first[0] == '\0') {
            snprintf(first, sizeof first, "%s", got);
        } else if (strcmp(first, got) != 0) {
            fprintf(stderr, "node %d disagrees\n", i + 1);
            failures++;
        }
        long long total = 0;
        char *save = NULL;
        for (char *l = strtok_r(got, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
            const char *eq = strchr(l, '=');
            total += eq ? atoll(eq + 1) : 0;
        }
        if (total != 155) {
            fprintf(stderr, "node %d holds %lld in total, expected 155\n", i + 1, total);
            failures++;
        }
    }
    const char *want = "alice=85\nbob=40\ncarol=30\n";
    if (strcmp(first, want) != 0) {
        fprintf(stderr, "balances are\n%s, expected\n%s", first, want);
        failures++;
    }

    jk_client_free(client);
    for (int i = 0; i < 3; i++) {
        jk_server_free(servers[i]);
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
    printf(failures ? "bank: MISMATCH\n" : "bank: every node agrees, total conserved\n");
    return failures ? 1 : 0;
}
