/* User state machines written in C: a 3-node embedded cluster in one process, each node
 * hosting the bank of examples/c/bank_machine.h. Deposits, transfers, a refused transfer
 * (JK_STATUS_REJECTED with the bank's message), a batch with per-command statuses, queries at
 * each consistency, a follower whose apply crashes (JK_STATUS_IO → that node fails, the others
 * serve on), and each machine's free called exactly once (also when a start fails). */
#define _GNU_SOURCE
#include "test_cluster.h"

#include "../../examples/c/bank_machine.h"

static atomic_int frees;

static jk_bytes text(const char *s) { return (jk_bytes){.data = (const uint8_t *)s, .len = strlen(s)}; }

/* `buf` equals `want`; then frees it. */
static void expect_text(jk_buffer *buf, const char *want) {
    REQUIRE(buf != NULL);
    if (buf->len != strlen(want) || memcmp(buf->data, want, buf->len) != 0) {
        fprintf(stderr, "got \"%.*s\", expected \"%s\"\n", (int)buf->len, (const char *)buf->data, want);
        exit(1);
    }
    jk_buffer_free(buf);
}

static void update(jk_client *c, const char *cmd, const char *want) {
    jk_buffer *r = NULL;
    CHECK(jk_sm_update(c, "bank", text(cmd), JK_RESPONSE_CONFIG_REPLICATION, &r, ERR));
    expect_text(r, want);
}

static void query(jk_client *c, const char *q, uint32_t consistency, const char *want) {
    jk_buffer *r = NULL;
    CHECK(jk_sm_query(c, "bank", text(q), consistency, &r, ERR));
    expect_text(r, want);
}

/* Whether `q` at `consistency` answers `want` now. */
static bool answers(jk_client *c, const char *q, uint32_t consistency, const char *want) {
    jk_buffer *r = NULL;
    CHECK(jk_sm_query(c, "bank", text(q), consistency, &r, ERR));
    bool same = r->len == strlen(want) && memcmp(r->data, want, r->len) == 0;
    jk_buffer_free(r);
    return same;
}

static bool node_failed(jk_server *s) {
    jk_server_info info;
    CHECK(jk_server_status(s, &info, ERR));
    return info.failed;
}

static uint64_t applied(jk_server *s) {
    jk_server_info info;
    CHECK(jk_server_status(s, &info, ERR));
    return info.applied_index;
}

static uint64_t commit_index(jk_server *s) {
    jk_server_info info;
    CHECK(jk_server_status(s, &info, ERR));
    return info.commit_index;
}

/* STATE_CHANGED events: the latest index reported for "bank" per subscription (user_data). */
typedef struct {
    atomic_ullong bank_index;
    atomic_int state_events;
} state_seen;

static void on_state(void *user_data, const jk_cluster_event *event, const jk_error *error) {
    state_seen *seen = user_data;
    (void)error;
    if (event == NULL || event->kind != JK_CLUSTER_EVENT_KIND_STATE_CHANGED) return;
    atomic_fetch_add(&seen->state_events, 1);
    if (strcmp(event->machine, "bank") == 0) atomic_store(&seen->bank_index, event->applied_index);
}

int main(void) {
    /* A failed start frees the machines it was given, once. */
    jk_state_machine lost = bank_machine("bank", &frees);
    jk_server *none = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "config", jk_server_start_with_machines(NULL, &lost, 1, &none, ERR));
    REQUIRE(none == NULL && atomic_load(&frees) == 1);
    jk_state_machine bad = bank_machine("jk.reserved", &frees);
    jk_server_config bad_cfg = {.node_id = 1, .listen = "127.0.0.1:0", .cluster_id = 1, .data_dir = "/tmp/jk-sm-unused"};
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "reserved", jk_server_start_with_machines(&bad_cfg, &bad, 1, &none, ERR));
    REQUIRE(atomic_load(&frees) == 2);

    tc_cluster c;
    memset(&c, 0, sizeof c);
    snprintf(c.root, sizeof c.root, "/tmp/jk-sm-XXXXXX");
    REQUIRE(mkdtemp(c.root) != NULL);
    c.nodes = c.founders = 3;
    bank *banks[3];
    for (int i = 0; i < 3; i++) {
        snprintf(c.addrs[i], sizeof c.addrs[i], "127.0.0.1:%d", tc_free_port());
        snprintf(c.dirs[i], sizeof c.dirs[i], "%s/node%d", c.root, i + 1);
        c.peers[i] = (jk_peer){.node_id = (uint64_t)i + 1, .addr = c.addrs[i]};
    }
    for (int i = 0; i < 3; i++) {
        jk_server_config cfg = {.node_id = (uint64_t)i + 1, .listen = c.addrs[i], .cluster_id = TC_CLUSTER_ID,
                                .data_dir = c.dirs[i], .peers = c.peers, .peers_len = 3};
        jk_state_machine m = bank_machine("bank", &frees);
        banks[i] = m.user_data;
        CHECK(jk_server_start_with_machines(&cfg, &m, 1, &c.servers[i], ERR));
    }
    uint64_t leader = 0;
    CHECK(jk_server_wait_for_leader(c.servers[0], TC_WAIT_MS, &leader, ERR));
    const char *addrs[3];
    tc_founder_addrs(&c, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, 3, TC_CLUSTER_ID, &client, ERR));

    update(client, "deposit alice 100", "100");
    update(client, "deposit bob 20", "20");
    update(client, "transfer alice bob 30", "70");
    EXPECT_ERROR(JK_STATUS_REJECTED, "bob has 50, short of 80",
                 jk_sm_update(client, "bank", text("transfer bob alice 80"), JK_RESPONSE_CONFIG_REPLICATION, &(jk_buffer *){NULL}, ERR));
    /* Below REPLICATION the result is not known yet: NULL. */
    jk_buffer *r = (jk_buffer *)1;
    CHECK(jk_sm_update(client, "bank", text("deposit carol 5"), JK_RESPONSE_CONFIG_RECEIVE, &r, ERR));
    REQUIRE(r == NULL);

    /* A batch: per-command statuses. */
    jk_bytes batch[3] = {text("deposit dave 10"), text("transfer dave erin 50"), text("transfer dave erin 4")};
    jk_sm_results *results = NULL;
    CHECK(jk_sm_update_batch(client, "bank", batch, 3, JK_RESPONSE_CONFIG_REPLICATION, &results, ERR));
    REQUIRE(results != NULL && results->len == 3);
    REQUIRE(results->results[0].status == JK_STATUS_OK && results->results[0].message == NULL);
    REQUIRE(results->results[0].value.len == 2 && memcmp(results->results[0].value.data, "10", 2) == 0);
    REQUIRE(results->results[1].status == JK_STATUS_REJECTED);
    REQUIRE(strstr(results->results[1].message, "dave has 10, short of 50") != NULL);
    REQUIRE(results->results[2].status == JK_STATUS_OK && results->results[2].value.len == 1 &&
            results->results[2].value.data[0] == '6');
    jk_sm_results_free(results);
    jk_sm_results_free(NULL);
    results = (jk_sm_results *)1;
    CHECK(jk_sm_update_batch(client, "bank", batch, 1, JK_RESPONSE_CONFIG_PERSISTENCE, &results, ERR));
    REQUIRE(results == NULL);

    /* A PERSISTENCE answer comes before the commit: wait until a strict read sees it. */
    const char *all = "alice=70\nbob=50\ncarol=5\ndave=16\nerin=4\n";
    EVENTUALLY(answers(client, "balances", JK_QUERY_CONSISTENCY_STRICT, all));
    query(client, "balance alice", JK_QUERY_CONSISTENCY_SEQUENTIAL, "70");
    query(client, "balance nobody", JK_QUERY_CONSISTENCY_SEQUENTIAL, "0");
    EXPECT_ERROR(JK_STATUS_REJECTED, "unknown query",
                 jk_sm_query(client, "bank", text("what"), JK_QUERY_CONSISTENCY_STRICT, &r, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "consistency", jk_sm_query(client, "bank", text("balances"), 99, &r, ERR));
    /* Each node, read locally: it catches up with everything committed. */
    uint64_t done = commit_index(c.servers[leader - 1]);
    for (int i = 0; i < 3; i++) {
        EVENTUALLY(applied(c.servers[i]) >= done);
        jk_client *one = NULL;
        CHECK(jk_client_connect(&addrs[i], 1, TC_CLUSTER_ID, &one, ERR));
        EVENTUALLY(answers(one, "balances", JK_QUERY_CONSISTENCY_NONE, all));
        query(one, "balances", JK_QUERY_CONSISTENCY_SEQUENTIAL, all);
        jk_client_free(one);
    }

    /* STATE_CHANGED events, from a client's and an embedded server's subscriptions that ask
     * for them; one without the flag never gets them. */
    state_seen remote = {0}, local = {0}, plain = {0};
    jk_events *remote_events = NULL, *local_events = NULL, *plain_events = NULL, *refused = NULL;
    CHECK(jk_client_events_with(client, JK_EVENTS_STATE_MACHINES, on_state, &remote, &remote_events, ERR));
    CHECK(jk_server_events_with(c.servers[0], JK_EVENTS_STATE_MACHINES, on_state, &local, &local_events, ERR));
    CHECK(jk_client_events(client, on_state, &plain, &plain_events, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "flags",
                 jk_client_events_with(client, 2, on_state, &plain, &refused, ERR));
    EVENTUALLY(atomic_load(&remote.bank_index) > 0 && atomic_load(&local.bank_index) > 0);
    uint64_t before = atomic_load(&remote.bank_index);
    update(client, "deposit erin 1", "5");
    uint64_t synced = 0;
    CHECK(jk_client_sync(client, &synced, ERR));
    EVENTUALLY(atomic_load(&remote.bank_index) > before && atomic_load(&local.bank_index) > before);
    REQUIRE(atomic_load(&remote.bank_index) <= synced);
    REQUIRE(atomic_load(&plain.state_events) == 0);
    REQUIRE(jk_events_close(remote_events) == JK_STATUS_OK);
    REQUIRE(jk_events_close(local_events) == JK_STATUS_OK);
    REQUIRE(jk_events_close(plain_events) == JK_STATUS_OK);
    all = "alice=70\nbob=50\ncarol=5\ndave=16\nerin=5\n";

    /* A snapshot (snapshot_write on every node) and a recovery to it (restore_read). */
    uint64_t snap = 0;
    CHECK(jk_admin_take_snapshot(client, 0, &snap, ERR));
    update(client, "deposit alice 1000", "1070");
    CHECK(jk_admin_recover_snapshot(client, snap, 0, ERR));
    EVENTUALLY(answers(client, "balances", JK_QUERY_CONSISTENCY_STRICT, all));

    /* A follower's apply crashes: that node fails, the others go on. */
    CHECK(jk_server_wait_for_leader(c.servers[0], TC_WAIT_MS, &leader, ERR));
    int victim = leader == 3 ? 1 : 2; /* an index, not the leader's */
    atomic_store(&banks[victim]->crash, 1);
    update(client, "deposit frank 1", "1");
    EVENTUALLY(node_failed(c.servers[victim]));
    for (int i = 0; i < 3; i++) {
        REQUIRE(i == victim || !node_failed(c.servers[i]));
    }
    update(client, "deposit frank 2", "3");
    query(client, "balance frank", JK_QUERY_CONSISTENCY_STRICT, "3");

    jk_client_free(client);
    tc_cluster_stop(&c);
    if (atomic_load(&frees) != 5) {
        fprintf(stderr, "free was called %d times, expected 5\n", atomic_load(&frees));
        return 1;
    }
    printf("state_machine_test: ok\n");
    return 0;
}
