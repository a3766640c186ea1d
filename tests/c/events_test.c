/* Cluster events and snapshots through the C ABI on an embedded 3-node cluster:
 * (a) a client's events start with the current state (leader first, three voters, a role), and
 *     after jk_admin_transfer_leader a LEADER_CHANGED names the new leader;
 * (b) each embedded node's own events see the same change, and its own role change;
 * (c) jk_events_close from another thread while a callback runs (it waits for it) and from inside
 *     the callback; no callback after close; a closed client ends its subscription with one final
 *     call (event NULL, JK_STATUS_CLOSED), a stopped server likewise;
 * (d) k=1, a snapshot on every node, k=2, recovery of that snapshot: k is 1 again; recovery of an
 *     index nobody retains fails with a clear error.
 * Every wait is a condition variable (or, for state only the library holds, a poll) bounded by
 * TC_WAIT_MS. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "test_cluster.h"

#define NODES 3

/* What one subscription's callbacks saw; every field is guarded by `mu`. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int events;     /* event callbacks */
    int first_kind; /* the kind of the first event; -1 before it */
    uint64_t leader; /* the node the latest LEADER_CHANGED named (0: none) */
    uint64_t term;
    int voters;       /* voters_len of the latest VOTERS_CHANGED; -1 before one */
    uint64_t role_node; /* the latest ROLE_CHANGED */
    jk_role role;
    uint64_t max_index0; /* partition 0's max_index in the latest JOURNAL_CHANGED */
    int ended;           /* final calls (event NULL) */
    jk_status end_status;
    int after_end;   /* calls after the final one: must stay 0 */
    int closed;      /* jk_events_close returned, or was called from the callback */
    int after_close; /* calls after that: must stay 0 */
    /* Close from inside the callback at this event (0: never), with `handle` once set. */
    int close_inside_at;
    jk_events *handle;
    int handle_set;
    /* Block the callback at this event (0: never) until `released`. */
    int block_at;
    int blocked, released;
    int closing;            /* the closer thread is about to call jk_events_close */
    int close_returned_early; /* close returned while the callback still ran: must stay 0 */
} recorder;

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &attr);
    pthread_condattr_destroy(&attr);
    r->first_kind = -1;
    r->voters = -1;
}

static void recorder_destroy(recorder *r) {
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* With r->mu held: waits on r->cv until `cond` holds, at most TC_WAIT_MS (then exits naming it). */
#define WAIT_LOCKED(r, cond)                                                                   \
    do {                                                                                       \
        struct timespec until_;                                                                \
        clock_gettime(CLOCK_MONOTONIC, &until_);                                               \
        until_.tv_sec += TC_WAIT_MS / 1000;                                                    \
        while (!(cond)) {                                                                      \
            if (pthread_cond_timedwait(&(r)->cv, &(r)->mu, &until_) == ETIMEDOUT && !(cond)) { \
                fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond); \
                exit(1);                                                                       \
            }                                                                                  \
        }                                                                                      \
    } while (0)
/* WAIT_LOCKED, taking and releasing r->mu. */
#define WAIT_UNTIL(r, cond)                                                                    \
    do {                                                                                       \
        pthread_mutex_lock(&(r)->mu);                                                          \
        WAIT_LOCKED(r, cond);                                                                  \
        pthread_mutex_unlock(&(r)->mu);                                                        \
    } while (0)
/* Reads `expr` under r->mu. */
#define READ(r, expr, out)                                                                     \
    do {                                                                                       \
        pthread_mutex_lock(&(r)->mu);                                                          \
        (out) = (expr);                                                                        \
        pthread_mutex_unlock(&(r)->mu);                                                        \
    } while (0)

static void on_event(void *user_data, const jk_cluster_event *event, const jk_error *error) {
    recorder *r = user_data;
    pthread_mutex_lock(&r->mu);
    r->after_close += r->closed;
    r->after_end += r->ended;
    if (event == NULL) {
        REQUIRE(error != NULL && jk_error_message(error) != NULL);
        r->ended++;
        r->end_status = jk_error_status(error);
    } else {
        REQUIRE(error == NULL);
        r->events++;
        if (r->first_kind < 0) {
            r->first_kind = (int)event->kind;
        }
        switch (event->kind) {
        case JK_CLUSTER_EVENT_KIND_LEADER_CHANGED:
            r->leader = event->leader ? event->leader->node_id : 0;
            REQUIRE(event->leader == NULL || strncmp(event->leader->addr, "127.0.0.1:", 10) == 0);
            r->term = event->term;
            REQUIRE(event->configuration == NULL);
            break;
        case JK_CLUSTER_EVENT_KIND_VOTERS_CHANGED:
            REQUIRE(event->configuration != NULL && event->configuration->leader == NULL);
            REQUIRE(!event->configuration->is_joint);
            r->voters = (int)event->configuration->voters_len;
            for (size_t i = 0; i < event->configuration->voters_len; i++) {
                REQUIRE(event->configuration->voters[i].addr != NULL);
            }
            break;
        case JK_CLUSTER_EVENT_KIND_ROLE_CHANGED:
            r->role_node = event->node_id;
            r->role = event->role;
            REQUIRE(jk_role_name(event->role) != NULL);
            break;
        case JK_CLUSTER_EVENT_KIND_JOURNAL_CHANGED:
            REQUIRE(event->min_index <= event->max_index);
            if (event->partition == 0) {
                r->max_index0 = event->max_index;
            }
            break;
        default:
            fprintf(stderr, "unknown event kind %d\n", (int)event->kind);
            exit(1);
        }
    }
    pthread_cond_broadcast(&r->cv);
    if (event != NULL && r->events == r->block_at) {
        r->blocked = 1;
        pthread_cond_broadcast(&r->cv);
        WAIT_LOCKED(r, r->released);
        /* The closer called jk_events_close before the release: it must not return before this
         * callback does. */
        r->close_returned_early |= r->closed;
    }
    if (event != NULL && r->events == r->close_inside_at) {
        WAIT_LOCKED(r, r->handle_set); /* the handle reaches the test after the first events */
        jk_events *handle = r->handle;
        r->closed = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        REQUIRE(jk_events_close(handle) == JK_STATUS_OK);
        return;
    }
    pthread_mutex_unlock(&r->mu);
}

static jk_events *subscribe_client(jk_client *client, recorder *r) {
    jk_events *events = NULL;
    CHECK(jk_client_events(client, on_event, r, &events, ERR));
    REQUIRE(events != NULL);
    pthread_mutex_lock(&r->mu);
    r->handle = events;
    r->handle_set = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return events;
}

/* Closes a subscription and records that no callback may follow. */
static void close_events(recorder *r, jk_events *events) {
    REQUIRE(jk_events_close(events) == JK_STATUS_OK);
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_mutex_unlock(&r->mu);
}

typedef struct {
    recorder *r;
    jk_events *events;
} closer_args;

static void *closer(void *p) {
    closer_args *a = p;
    pthread_mutex_lock(&a->r->mu);
    a->r->closing = 1;
    pthread_cond_broadcast(&a->r->cv);
    pthread_mutex_unlock(&a->r->mu);
    close_events(a->r, a->events);
    return NULL;
}

/* Appends one entry to partition 0 and waits until `witness` (an open subscription) reports the
 * partition's new end: every subscription still open has then been sent that change. */
static void append_and_witness(jk_client *client, recorder *witness) {
    jk_bytes entry = {(const uint8_t *)"x", 1};
    uint64_t index = 0;
    CHECK(jk_journal_append(client, 0, &entry, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, ERR));
    WAIT_UNTIL(witness, witness->max_index0 >= index + 1);
}

static uint64_t configured_leader(jk_client *client) {
    jk_cluster_configuration *conf = NULL;
    CHECK(jk_admin_cluster_configuration(client, &conf, ERR));
    uint64_t id = conf->leader ? conf->leader->node_id : 0;
    jk_cluster_configuration_free(conf);
    return id;
}

/* Whether every node of `cluster` lists snapshot `index`, and nothing else is amiss. */
static int every_node_holds(jk_client *client, const tc_cluster *cluster, uint64_t index) {
    jk_snapshot_list *list = NULL;
    CHECK(jk_admin_snapshots(client, &list, ERR));
    int holding = 0;
    REQUIRE(list->nodes_len == NODES);
    for (size_t i = 0; i < list->nodes_len; i++) {
        const jk_node_snapshots *n = &list->nodes[i];
        REQUIRE(n->node.node_id == i + 1 && strcmp(n->node.addr, cluster->addrs[i]) == 0);
        if (n->error != NULL) {
            continue; /* asked again on the next poll */
        }
        for (size_t s = 0; s < n->snapshots_len; s++) {
            if (n->snapshots[s].index == index) {
                REQUIRE(n->snapshots[s].size_bytes > 0 && n->snapshots[s].time_ms > 0);
                holding++;
                break;
            }
        }
    }
    jk_snapshot_list_free(list);
    return holding == NODES;
}

static void expect_value(jk_client *client, const char *key, const char *want) {
    jk_buffer *value = NULL;
    CHECK(jk_kv_get(client, key, JK_QUERY_CONSISTENCY_STRICT, &value, ERR));
    REQUIRE(value != NULL && value->len == strlen(want) && memcmp(value->data, want, value->len) == 0);
    jk_buffer_free(value);
}

static void set_value(jk_client *client, const char *key, const char *value) {
    jk_bytes v = {(const uint8_t *)value, strlen(value)};
    CHECK(jk_kv_set(client, key, v, NULL, ERR));
}

int main(void) {
    tc_cluster cluster;
    tc_cluster_start(&cluster, "events", NODES, NODES);
    const char *addrs[NODES];
    tc_founder_addrs(&cluster, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, NODES, TC_CLUSTER_ID, &client, ERR));
    uint64_t leader = 0;
    EVENTUALLY((leader = configured_leader(client)) != 0);

    /* Refusals: nothing starts, the callback is never called. */
    recorder unused;
    recorder_init(&unused);
    jk_events *none = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_client_events(NULL, on_event, &unused, &none, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "callback", jk_client_events(client, NULL, &unused, &none, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "out", jk_client_events(client, on_event, &unused, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "server", jk_server_events(NULL, on_event, &unused, &none, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "callback",
                 jk_server_events(cluster.servers[0], NULL, &unused, &none, ERR));
    REQUIRE(none == NULL);
    REQUIRE(jk_events_close(NULL) == JK_STATUS_OK);

    /* (a) The client's events: the current state first. */
    recorder ca;
    recorder_init(&ca);
    jk_events *client_events = subscribe_client(client, &ca);
    WAIT_UNTIL(&ca, ca.leader == leader && ca.voters == NODES && ca.role_node != 0);
    int first_kind;
    READ(&ca, ca.first_kind, first_kind);
    REQUIRE(first_kind == JK_CLUSTER_EVENT_KIND_LEADER_CHANGED);

    /* (b) Each node's own events: the same leader, its own role. */
    recorder sa[NODES];
    jk_events *server_events[NODES];
    for (int i = 0; i < NODES; i++) {
        recorder_init(&sa[i]);
        CHECK(jk_server_events(cluster.servers[i], on_event, &sa[i], &server_events[i], ERR));
        uint64_t id = (uint64_t)i + 1;
        jk_role want = id == leader ? JK_ROLE_LEADER : JK_ROLE_FOLLOWER;
        WAIT_UNTIL(&sa[i], sa[i].leader == leader && sa[i].voters == NODES && sa[i].role_node == id &&
                               sa[i].role == want);
        READ(&sa[i], sa[i].first_kind, first_kind);
        REQUIRE(first_kind == JK_CLUSTER_EVENT_KIND_LEADER_CHANGED);
    }

    /* The leader moves: every subscription sees it, in a later term. */
    uint64_t old_term;
    READ(&ca, ca.term, old_term);
    uint64_t target = leader % NODES + 1;
    CHECK(jk_admin_transfer_leader(client, target, 30000, ERR));
    WAIT_UNTIL(&ca, ca.leader == target && ca.term > old_term);
    for (int i = 0; i < NODES; i++) {
        uint64_t id = (uint64_t)i + 1;
        WAIT_UNTIL(&sa[i], sa[i].leader == target && sa[i].term > old_term);
        if (id == target) {
            WAIT_UNTIL(&sa[i], sa[i].role == JK_ROLE_LEADER);
        } else if (id == leader) {
            WAIT_UNTIL(&sa[i], sa[i].role == JK_ROLE_FOLLOWER);
        }
    }
    /* Journal bounds move with an append. */
    append_and_witness(client, &ca);
    for (int i = 0; i < NODES; i++) {
        uint64_t end;
        READ(&ca, ca.max_index0, end);
        WAIT_UNTIL(&sa[i], sa[i].max_index0 == end);
    }

    /* (c1) Closed from another thread while a callback runs: close waits for it. */
    recorder cb;
    recorder_init(&cb);
    cb.block_at = 1;
    jk_events *blocked_events = subscribe_client(client, &cb);
    WAIT_UNTIL(&cb, cb.blocked);
    pthread_t closer_thread;
    closer_args args = {&cb, blocked_events};
    REQUIRE(pthread_create(&closer_thread, NULL, closer, &args) == 0);
    WAIT_UNTIL(&cb, cb.closing);
    pthread_mutex_lock(&cb.mu);
    cb.released = 1;
    pthread_cond_broadcast(&cb.cv);
    pthread_mutex_unlock(&cb.mu);
    REQUIRE(pthread_join(closer_thread, NULL) == 0);

    /* (c2) Closed from inside its own callback (the second event). */
    recorder cc;
    recorder_init(&cc);
    cc.close_inside_at = 2;
    subscribe_client(client, &cc);
    WAIT_UNTIL(&cc, cc.closed);

    /* (c3) Ended by its client's close: one final call with CLOSED, then nothing. */
    jk_client *other = NULL;
    CHECK(jk_client_connect(addrs, NODES, TC_CLUSTER_ID, &other, ERR));
    recorder ce;
    recorder_init(&ce);
    jk_events *ended_events = subscribe_client(other, &ce);
    WAIT_UNTIL(&ce, ce.events > 0);
    REQUIRE(jk_client_close(other) == JK_STATUS_OK);
    WAIT_UNTIL(&ce, ce.ended == 1);

    /* Changes after all that reach the open subscription, not the closed or ended ones. */
    append_and_witness(client, &ca);
    uint64_t moved_to = target % NODES + 1;
    CHECK(jk_admin_transfer_leader(client, moved_to, 30000, ERR));
    WAIT_UNTIL(&ca, ca.leader == moved_to);
    append_and_witness(client, &ca);
    pthread_mutex_lock(&cb.mu);
    /* More than one event when the release came before the closer's call reached the library. */
    REQUIRE(cb.events >= 1 && cb.after_close == 0 && cb.close_returned_early == 0 && cb.ended == 0);
    pthread_mutex_unlock(&cb.mu);
    pthread_mutex_lock(&cc.mu);
    REQUIRE(cc.events == 2 && cc.after_close == 0 && cc.ended == 0);
    pthread_mutex_unlock(&cc.mu);
    pthread_mutex_lock(&ce.mu);
    REQUIRE(ce.ended == 1 && ce.end_status == JK_STATUS_CLOSED && ce.after_end == 0);
    pthread_mutex_unlock(&ce.mu);
    close_events(&ce, ended_events); /* still needed after the final call */
    jk_client_free(other);

    /* (d) Snapshots: taken on every node, recovered. */
    uint64_t index = 0;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "index_out", jk_admin_take_snapshot(client, 0, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "exceeds",
                 jk_admin_take_snapshot(client, JK_MAX_ADMIN_TIMEOUT_MS + 1, &index, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "out", jk_admin_snapshots(client, NULL, ERR));
    jk_snapshot_list_free(NULL);
    set_value(client, "k", "1");
    CHECK(jk_admin_take_snapshot(client, 30000, &index, ERR));
    REQUIRE(index > 0);
    EVENTUALLY(every_node_holds(client, &cluster, index));
    set_value(client, "k", "2");
    expect_value(client, "k", "2");
    CHECK(jk_admin_recover_snapshot(client, index, 30000, ERR));
    expect_value(client, "k", "1");
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not by a majority",
                 jk_admin_recover_snapshot(client, index + 1000000, 0, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "exceeds",
                 jk_admin_recover_snapshot(client, index, UINT64_MAX, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_admin_recover_snapshot(NULL, index, 0, ERR));
    expect_value(client, "k", "1");

    close_events(&ca, client_events);
    jk_client_free(client);

    /* A stopped server ends its node's subscription: one final call with CLOSED. */
    for (int i = 0; i < NODES; i++) {
        CHECK(jk_server_stop(cluster.servers[i], ERR));
        WAIT_UNTIL(&sa[i], sa[i].ended == 1);
        pthread_mutex_lock(&sa[i].mu);
        REQUIRE(sa[i].end_status == JK_STATUS_CLOSED && sa[i].after_end == 0);
        pthread_mutex_unlock(&sa[i].mu);
        close_events(&sa[i], server_events[i]);
    }
    EXPECT_ERROR(JK_STATUS_CLOSED, "stopped",
                 jk_server_events(cluster.servers[0], on_event, &unused, &none, ERR));
    tc_cluster_stop(&cluster);

    pthread_mutex_lock(&unused.mu);
    REQUIRE(unused.events == 0 && unused.ended == 0);
    pthread_mutex_unlock(&unused.mu);
    recorder *all[] = {&unused, &ca, &cb, &cc, &ce, &sa[0], &sa[1], &sa[2]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        REQUIRE(all[i]->after_close == 0);
        recorder_destroy(all[i]);
    }
    printf("done\n");
    return 0;
}
