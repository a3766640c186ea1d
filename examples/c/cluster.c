/* An embedded 3-node JournalKeeper cluster in one process, used through the C ABI: start three
 * servers on loopback ports with temporary data directories, append and read journal entries,
 * use the KV and a watch, append asynchronously, read the cluster configuration, shut down.
 *
 *   gcc -Wall -Wextra $(pkg-config --cflags journalkeeper) cluster.c \
 *       $(pkg-config --libs journalkeeper) -o cluster
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "journalkeeper.h"

#define NODES 3
#define CLUSTER_ID 42

/* Exits with the error's code and message when a call fails. */
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

/* A loopback port nobody listens on right now. */
static int free_port(void) {
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

/* What the watch callback has seen; the callback runs on a library thread. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int events;
    int async_done;
    uint64_t async_index;
} seen_t;

static void on_change(void *user_data, const jk_kv_event *event, const jk_error *error) {
    seen_t *seen = user_data;
    if (event == NULL) {
        printf("watch ended: %s\n", jk_error_code(error));
        return;
    }
    printf("watch: index %llu key %s: %.*s -> %.*s\n", (unsigned long long)event->index, event->key,
           event->old_value ? (int)event->old_value->len : 6,
           event->old_value ? (const char *)event->old_value->data : "absent",
           event->new_value ? (int)event->new_value->len : 7,
           event->new_value ? (const char *)event->new_value->data : "removed");
    pthread_mutex_lock(&seen->mu);
    seen->events++;
    pthread_cond_broadcast(&seen->cv);
    pthread_mutex_unlock(&seen->mu);
}

static void on_appended(void *user_data, jk_status status, uint64_t first_index, const jk_error *error) {
    seen_t *seen = user_data;
    if (status != JK_STATUS_OK) {
        fprintf(stderr, "async append failed: %s\n", jk_error_message(error));
    }
    pthread_mutex_lock(&seen->mu);
    seen->async_done = status == JK_STATUS_OK ? 1 : -1;
    seen->async_index = first_index;
    pthread_cond_broadcast(&seen->cv);
    pthread_mutex_unlock(&seen->mu);
}

/* Waits until `cond` holds for `seen` (or 30 s pass). */
#define WAIT_FOR(seen, cond)                                                                   \
    do {                                                                                       \
        pthread_mutex_lock(&(seen)->mu);                                                       \
        for (int i_ = 0; i_ < 300 && !(cond); i_++) {                                          \
            struct timespec t_;                                                                \
            clock_gettime(CLOCK_REALTIME, &t_);                                                \
            t_.tv_nsec += 100000000;                                                           \
            if (t_.tv_nsec >= 1000000000) {                                                    \
                t_.tv_sec++;                                                                   \
                t_.tv_nsec -= 1000000000;                                                      \
            }                                                                                  \
            pthread_cond_timedwait(&(seen)->cv, &(seen)->mu, &t_);                             \
        }                                                                                      \
        int ok_ = (cond);                                                                      \
        pthread_mutex_unlock(&(seen)->mu);                                                     \
        if (!ok_) {                                                                            \
            fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

int main(void) {
    printf("libjournalkeeper %s (header %s)\n", jk_version(), JK_VERSION_STRING);

    /* 1. Three embedded servers, one cluster. */
    char root[] = "/tmp/jk-example-XXXXXX";
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char addrs[NODES][32], dirs[NODES][64];
    const char *addr_list[NODES];
    jk_peer peers[NODES];
    for (int i = 0; i < NODES; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", free_port());
        snprintf(dirs[i], sizeof dirs[i], "%s/node%d", root, i + 1);
        addr_list[i] = addrs[i];
        peers[i] = (jk_peer){.node_id = (uint64_t)i + 1, .addr = addrs[i]};
    }
    jk_server *servers[NODES];
    for (int i = 0; i < NODES; i++) {
        jk_server_config cfg = {
            .node_id = (uint64_t)i + 1,
            .listen = addrs[i],
            .cluster_id = CLUSTER_ID,
            .data_dir = dirs[i],
            .peers = peers,
            .peers_len = NODES,
        };
        CHECK(jk_server_start(&cfg, &servers[i], ERR));
    }
    uint64_t leader = 0;
    CHECK(jk_server_wait_for_leader(servers[0], 60000, &leader, ERR));
    printf("3 nodes up, leader is node %llu\n", (unsigned long long)leader);

    /* 2. A client; the journal. */
    jk_client *client = NULL;
    CHECK(jk_client_connect(addr_list, NODES, CLUSTER_ID, &client, ERR));

    seen_t seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    jk_watch *watch = NULL;
    CHECK(jk_kv_watch(client, "config/", true, 0, on_change, &seen, &watch, ERR));

    const char *words[] = {"alpha", "beta", "gamma"};
    jk_bytes batch[3];
    for (int i = 0; i < 3; i++) {
        batch[i] = (jk_bytes){(const uint8_t *)words[i], strlen(words[i])};
    }
    uint64_t first = 0;
    CHECK(jk_journal_append(client, 0, batch, 3, JK_RESPONSE_CONFIG_REPLICATION, &first, ERR));
    printf("appended 3 entries to partition 0 from index %llu\n", (unsigned long long)first);

    jk_entries *entries = NULL;
    CHECK(jk_journal_get(client, 0, first, 10, JK_QUERY_CONSISTENCY_STRICT, &entries, ERR));
    for (size_t i = 0; i < entries->len; i++) {
        const jk_entry *e = &entries->entries[i];
        printf("  [%llu] term %llu, batch %u/%u: %.*s\n", (unsigned long long)e->index,
               (unsigned long long)e->term, e->offset + 1, e->batch_size, (int)e->payload_len,
               (const char *)e->payload);
        if (e->payload_len != strlen(words[i]) || memcmp(e->payload, words[i], e->payload_len) != 0) {
            fprintf(stderr, "entry %zu differs from what was appended\n", i);
            return 1;
        }
    }
    jk_entries_free(entries);

    jk_indices *max = NULL;
    CHECK(jk_journal_max_indices(client, JK_QUERY_CONSISTENCY_SEQUENTIAL, &max, ERR));
    for (size_t i = 0; i < max->len; i++) {
        printf("partition %u: next index %llu\n", max->items[i].partition,
               (unsigned long long)max->items[i].index);
    }
    jk_indices_free(max);

    /* 3. The KV (the watch sees every change under "config/"). */
    CHECK(jk_kv_set(client, "config/a", (jk_bytes){(const uint8_t *)"1", 1}, NULL, ERR));
    CHECK(jk_kv_set(client, "config/b", (jk_bytes){(const uint8_t *)"2", 1}, NULL, ERR));
    jk_buffer *value = NULL;
    CHECK(jk_kv_get(client, "config/a", JK_QUERY_CONSISTENCY_STRICT, &value, ERR));
    printf("config/a = %.*s\n", (int)value->len, (const char *)value->data);
    jk_buffer_free(value);

    bool swapped = false;
    jk_bytes expect = {(const uint8_t *)"1", 1}, next = {(const uint8_t *)"10", 2};
    CHECK(jk_kv_cas(client, "config/a", &expect, &next, &swapped, NULL, ERR));
    printf("compare-and-set config/a 1 -> 10: %s\n", swapped ? "swapped" : "not swapped");

    jk_kv_entries *list = NULL;
    CHECK(jk_kv_list(client, "config/", JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    for (size_t i = 0; i < list->len; i++) {
        printf("  %s = %.*s\n", list->entries[i].key, (int)list->entries[i].value.len,
               (const char *)list->entries[i].value.data);
    }
    jk_kv_entries_free(list);

    jk_buffer *removed = NULL;
    CHECK(jk_kv_remove(client, "config/b", &removed, ERR));
    jk_buffer_free(removed);
    bool exists = true;
    CHECK(jk_kv_exists(client, "config/b", JK_QUERY_CONSISTENCY_STRICT, &exists, ERR));
    printf("config/b exists after remove: %s\n", exists ? "yes" : "no");

    WAIT_FOR(&seen, seen.events >= 4); /* set a, set b, cas a, remove b */

    /* 4. An asynchronous append; the callback runs on a library thread. */
    jk_bytes later = {(const uint8_t *)"delta", 5};
    CHECK(jk_journal_append_async(client, 0, &later, 1, JK_RESPONSE_CONFIG_ALL, on_appended, &seen, ERR));
    WAIT_FOR(&seen, seen.async_done != 0);
    printf("async append: index %llu\n", (unsigned long long)seen.async_index);

    /* 5. The cluster as the leader sees it. */
    jk_cluster_configuration *conf = NULL;
    CHECK(jk_admin_cluster_configuration(client, &conf, ERR));
    printf("voters:");
    for (size_t i = 0; i < conf->voters_len; i++) {
        printf(" %llu@%s", (unsigned long long)conf->voters[i].node_id, conf->voters[i].addr);
    }
    printf("; leader %s\n", conf->leader ? conf->leader->addr : "unknown");
    if (conf->leader) {
        /* What the leader holds for its clients (this client's connection among them). */
        jk_node_status *st = NULL;
        CHECK(jk_admin_status(client, conf->leader->addr, &st, ERR));
        if (!st->has_resources || st->resources.client_connections == 0) {
            fprintf(stderr, "the leader reports no resources / no client connection\n");
            return 1;
        }
        printf("leader holds: %llu client connections, %llu watches, %llu pending requests\n",
               (unsigned long long)st->resources.client_connections,
               (unsigned long long)st->resources.watches,
               (unsigned long long)st->resources.pending_requests);
        /* The monitoring detail: each follower's replication, the partitions, the disk. */
        if (!st->has_detail || st->detail.followers_len != conf->voters_len - 1 || st->detail.partitions_len == 0) {
            fprintf(stderr, "the leader reports no detail / not every follower\n");
            return 1;
        }
        for (size_t i = 0; i < st->detail.followers_len; i++) {
            const jk_follower_status *f = &st->detail.followers[i];
            printf("follower %llu: match %llu, lag %llu, heard %llu ms ago\n", (unsigned long long)f->node_id,
                   (unsigned long long)f->match_index, (unsigned long long)f->lag,
                   (unsigned long long)f->last_heard_ms);
        }
        printf("durable %llu; disk %s: %llu of %llu bytes free\n", (unsigned long long)st->detail.durable_index,
               st->detail.has_disk ? st->detail.disk_path : "unknown",
               (unsigned long long)st->detail.disk_free_bytes, (unsigned long long)st->detail.disk_total_bytes);
        jk_node_status_free(st);
    }
    jk_cluster_configuration_free(conf);

    jk_server_info info;
    CHECK(jk_server_status(servers[0], &info, ERR));
    const char *role = jk_role_name(info.role); /* "LEADER", "FOLLOWER", ...; NULL: not started */
    printf("node 1: %s, term %llu, commit %llu, applied %llu\n", role ? role : "not started",
           (unsigned long long)info.term, (unsigned long long)info.commit_index,
           (unsigned long long)info.applied_index);

    /* 6. Shut down: the watch (no callback after this returns), the client, the servers. */
    CHECK(jk_watch_close(watch));
    jk_client_free(client);
    for (int i = 0; i < NODES; i++) {
        CHECK(jk_server_stop(servers[i], ERR));
        jk_server_free(servers[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
    printf("done\n");
    return 0;
}
