/* The coordination recipes through the C ABI on an embedded 3-node cluster, one test per recipe:
 * (a) leases: grant, a key under it, time-to-live naming the key, one keep-alive; revoke removes
 *     the key and later calls fail with LEASE_EXPIRED; a lease nobody renews ends by itself
 *     while one kept by a jk_keep_alive lives on;
 * (b) locks: fencing tokens increase with every acquisition; a second contender's try_lock times
 *     out, a blocking lock waits until the holder unlocks;
 * (c) elections: an observer sees nobody, the first candidate, then the second one (who waited
 *     in campaign) once the first resigns; leader() agrees;
 * (d) IDs: a fresh sequence starts at 1 and ranges follow each other without overlap;
 * (e) liveness: registered members are listed and watched joining and leaving.
 * Every wait is bounded by TC_WAIT_MS. */
#define _GNU_SOURCE
#include <pthread.h>

#include "test_cluster.h"

#define NODES 3

static jk_bytes text(const char *s) { return (jk_bytes){(const uint8_t *)s, strlen(s)}; }

static int buffer_is(const jk_buffer *b, const char *s) {
    return b != NULL && b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static int key_exists(jk_client *client, const char *key) {
    bool exists = false;
    CHECK(jk_kv_exists(client, key, JK_QUERY_CONSISTENCY_STRICT, &exists, ERR));
    return exists;
}

static void test_leases(jk_client *client) {
    uint64_t lease = 0;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "lease_out", jk_coord_grant(client, 1000, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "ttl", jk_coord_grant(client, 1, &lease, ERR));
    CHECK(jk_coord_grant(client, 60000, &lease, ERR));
    REQUIRE(lease != 0);
    CHECK(jk_coord_put(client, "lease/key", text("v"), lease, ERR));
    REQUIRE(key_exists(client, "lease/key"));

    jk_lease_status *status = NULL;
    CHECK(jk_coord_time_to_live(client, lease, &status, ERR));
    REQUIRE(status->lease == lease && status->ttl_ms == 60000);
    REQUIRE(status->remaining_ms > 0);
    REQUIRE(status->keys_len == 1 && strcmp(status->keys[0], "lease/key") == 0);
    jk_lease_status_free(status);
    uint64_t remaining = 0;
    CHECK(jk_coord_keep_alive(client, lease, &remaining, ERR));
    REQUIRE(remaining > 0);

    bool existed = false;
    CHECK(jk_coord_revoke(client, lease, &existed, ERR));
    REQUIRE(existed);
    REQUIRE(!key_exists(client, "lease/key"));
    CHECK(jk_coord_revoke(client, lease, &existed, ERR));
    REQUIRE(!existed);
    EXPECT_ERROR(JK_STATUS_LEASE_EXPIRED, "", jk_coord_time_to_live(client, lease, &status, ERR));
    EXPECT_ERROR(JK_STATUS_LEASE_EXPIRED, "", jk_coord_keep_alive(client, lease, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_LEASE_EXPIRED, "", jk_coord_put(client, "lease/key", text("v"), lease, ERR));

    /* Two leases of 1 s with a key each; only one is kept alive. */
    uint64_t kept = 0, left = 0;
    CHECK(jk_coord_grant(client, 1000, &kept, ERR));
    CHECK(jk_coord_grant(client, 1000, &left, ERR));
    CHECK(jk_coord_put(client, "lease/kept", text("k"), kept, ERR));
    CHECK(jk_coord_put(client, "lease/left", text("l"), left, ERR));
    jk_keep_alive *keep_alive = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "out", jk_coord_keep_alive_start(client, kept, NULL, ERR));
    CHECK(jk_coord_keep_alive_start(client, kept, &keep_alive, ERR));
    REQUIRE(jk_keep_alive_lease(keep_alive) == kept);
    EVENTUALLY(!key_exists(client, "lease/left"));
    EXPECT_ERROR(JK_STATUS_LEASE_EXPIRED, "", jk_coord_keep_alive(client, left, NULL, ERR));
    /* The unkept lease ran out; the kept one, as old, holds its key and reports no loss. */
    REQUIRE(key_exists(client, "lease/kept"));
    CHECK(jk_keep_alive_state(keep_alive, &remaining, ERR));
    CHECK(jk_keep_alive_revoke(keep_alive, ERR));
    REQUIRE(!key_exists(client, "lease/kept"));
    REQUIRE(jk_keep_alive_revoke(NULL, NULL) == JK_STATUS_OK);
    jk_keep_alive_free(NULL);
    printf("leases: ok\n");
}

/* A contender blocked in jk_coord_lock / jk_coord_campaign on its own thread. */
typedef struct {
    jk_client *client;
    const char *name;
    uint64_t lease;
    int campaign;
    uint64_t token;
    volatile int done;
} contender;

static void *contend(void *arg) {
    contender *c = arg;
    if (c->campaign) {
        CHECK(jk_coord_campaign(c->client, c->name, text("second"), c->lease, &c->token, ERR));
    } else {
        CHECK(jk_coord_lock(c->client, c->name, c->lease, &c->token, ERR));
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_locks(jk_client *client) {
    uint64_t a = 0, b = 0, t1 = 0, t2 = 0, t3 = 0;
    CHECK(jk_coord_grant(client, 60000, &a, ERR));
    CHECK(jk_coord_grant(client, 60000, &b, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "name", jk_coord_lock(client, NULL, a, &t1, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "token_out", jk_coord_lock(client, "l", a, NULL, ERR));
    CHECK(jk_coord_lock(client, "l", a, &t1, ERR));
    REQUIRE(t1 != 0);

    bool acquired = true;
    uint64_t token = 1;
    long long start = tc_now_ms();
    CHECK(jk_coord_try_lock(client, "l", b, 300, &acquired, &token, ERR));
    REQUIRE(!acquired && token == 0 && tc_now_ms() - start >= 300);

    contender second = {.client = client, .name = "l", .lease = b};
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, contend, &second) == 0);
    /* b cannot hold the lock before a lets go of it: a third contender's wait passes first. */
    uint64_t c = 0;
    CHECK(jk_coord_grant(client, 60000, &c, ERR));
    CHECK(jk_coord_try_lock(client, "l", c, 300, &acquired, &token, ERR));
    REQUIRE(!acquired && !__atomic_load_n(&second.done, __ATOMIC_SEQ_CST));
    bool held = false;
    CHECK(jk_coord_unlock(client, "l", a, &held, ERR));
    REQUIRE(held);
    REQUIRE(pthread_join(thread, NULL) == 0);
    t2 = second.token;
    REQUIRE(t2 > t1);

    CHECK(jk_coord_unlock(client, "l", b, &held, ERR));
    REQUIRE(held);
    CHECK(jk_coord_try_lock(client, "l", a, 0, &acquired, &t3, ERR));
    REQUIRE(acquired && t3 > t2);
    CHECK(jk_coord_unlock(client, "l", a, &held, ERR));
    CHECK(jk_coord_unlock(client, "l", a, &held, ERR));
    REQUIRE(!held);
    /* A lock under a lease that ended fails at once. */
    CHECK(jk_coord_revoke(client, b, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_LEASE_EXPIRED, "", jk_coord_lock(client, "l", b, &token, ERR));
    CHECK(jk_coord_revoke(client, a, NULL, ERR));
    CHECK(jk_coord_revoke(client, c, NULL, ERR));
    printf("locks: ok (tokens %llu < %llu < %llu)\n", (unsigned long long)t1,
           (unsigned long long)t2, (unsigned long long)t3);
}

static void test_elections(jk_client *client) {
    uint64_t a = 0, b = 0, ta = 0;
    CHECK(jk_coord_grant(client, 60000, &a, ERR));
    CHECK(jk_coord_grant(client, 60000, &b, ERR));
    jk_election_observer *observer = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "name", jk_coord_observe(client, NULL, &observer, ERR));
    CHECK(jk_coord_observe(client, "e", &observer, ERR));
    jk_election_leader *seen = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "leader_out", jk_election_observer_next(observer, 0, NULL, ERR));
    CHECK(jk_election_observer_next(observer, TC_WAIT_MS, &seen, ERR));
    REQUIRE(seen == NULL);
    EXPECT_ERROR(JK_STATUS_TIMEOUT, "leader change", jk_election_observer_next(observer, 100, &seen, ERR));

    CHECK(jk_coord_campaign(client, "e", text("first"), a, &ta, ERR));
    CHECK(jk_election_observer_next(observer, TC_WAIT_MS, &seen, ERR));
    REQUIRE(seen != NULL && buffer_is(&seen->value, "first") && seen->lease == a && seen->token == ta);
    jk_election_leader_free(seen);
    jk_election_leader *current = NULL;
    CHECK(jk_coord_leader(client, "e", &current, ERR));
    REQUIRE(current != NULL && current->lease == a && current->token == ta);
    jk_election_leader_free(current);

    contender second = {.client = client, .name = "e", .lease = b, .campaign = 1};
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, contend, &second) == 0);
    /* b does not lead while a does: the observer sees no change meanwhile. */
    EXPECT_ERROR(JK_STATUS_TIMEOUT, "leader change", jk_election_observer_next(observer, 300, &seen, ERR));
    REQUIRE(!__atomic_load_n(&second.done, __ATOMIC_SEQ_CST));
    bool led = false;
    CHECK(jk_coord_resign(client, "e", a, &led, ERR));
    REQUIRE(led);
    REQUIRE(pthread_join(thread, NULL) == 0);
    REQUIRE(second.token > ta);
    CHECK(jk_election_observer_next(observer, TC_WAIT_MS, &seen, ERR));
    REQUIRE(seen != NULL && buffer_is(&seen->value, "second") && seen->lease == b &&
            seen->token == second.token);
    jk_election_leader_free(seen);

    CHECK(jk_coord_resign(client, "e", b, &led, ERR));
    CHECK(jk_election_observer_next(observer, TC_WAIT_MS, &seen, ERR));
    REQUIRE(seen == NULL);
    CHECK(jk_coord_leader(client, "e", &current, ERR));
    REQUIRE(current == NULL);
    jk_election_observer_close(observer);
    jk_election_observer_close(NULL);
    CHECK(jk_coord_revoke(client, a, NULL, ERR));
    CHECK(jk_coord_revoke(client, b, NULL, ERR));
    printf("elections: ok\n");
}

static void test_ids(jk_client *client) {
    uint64_t first = 0, range = 0, next = 0, other = 0;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "id_out", jk_coord_next_id(client, "ids", NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "count", jk_coord_next_ids(client, "ids", 0, &range, ERR));
    CHECK(jk_coord_next_id(client, "ids", &first, ERR));
    REQUIRE(first == 1);
    CHECK(jk_coord_next_ids(client, "ids", 10, &range, ERR));
    REQUIRE(range == first + 1);
    CHECK(jk_coord_next_id(client, "ids", &next, ERR));
    REQUIRE(next == range + 10);
    CHECK(jk_coord_next_id(client, "other-ids", &other, ERR));
    REQUIRE(other == 1);
    printf("ids: ok\n");
}

static void test_liveness(jk_client *client) {
    jk_members_watch *watch = NULL;
    CHECK(jk_coord_watch_members(client, "g", &watch, ERR));
    jk_registration *r1 = NULL, *r2 = NULL;
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "'/'",
                 jk_coord_register(client, "g/x", "m1", text(""), 2000, &r1, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "member", jk_coord_register(client, "g", NULL, text(""), 2000, &r1, ERR));
    CHECK(jk_coord_register(client, "g", "m1", text("info1"), 2000, &r1, ERR));
    CHECK(jk_coord_register(client, "g", "m2", text("info2"), 2000, &r2, ERR));
    REQUIRE(jk_registration_lease(r1) != 0 && jk_registration_lease(r1) != jk_registration_lease(r2));

    jk_group_members *members = NULL;
    CHECK(jk_coord_members(client, "g", &members, ERR));
    REQUIRE(members->len == 2);
    REQUIRE(strcmp(members->members[0].member, "m1") == 0 && buffer_is(&members->members[0].info, "info1"));
    REQUIRE(members->members[0].lease == jk_registration_lease(r1));
    REQUIRE(strcmp(members->members[1].member, "m2") == 0 && buffer_is(&members->members[1].info, "info2"));
    jk_group_members_free(members);

    jk_member_event *event = NULL;
    const char *joined[] = {"m1", "m2"};
    for (int i = 0; i < 2; i++) {
        CHECK(jk_members_watch_next(watch, TC_WAIT_MS, &event, ERR));
        REQUIRE(event->joined && strcmp(event->member.member, joined[i]) == 0);
        jk_member_event_free(event);
    }
    CHECK(jk_registration_close(r1, ERR));
    CHECK(jk_members_watch_next(watch, TC_WAIT_MS, &event, ERR));
    REQUIRE(!event->joined && strcmp(event->member.member, "m1") == 0);
    jk_member_event_free(event);
    CHECK(jk_coord_members(client, "g", &members, ERR));
    REQUIRE(members->len == 1 && strcmp(members->members[0].member, "m2") == 0);
    jk_group_members_free(members);

    bool existed = false;
    CHECK(jk_coord_unregister(client, "g", "m2", jk_registration_lease(r2), &existed, ERR));
    REQUIRE(existed);
    CHECK(jk_members_watch_next(watch, TC_WAIT_MS, &event, ERR));
    REQUIRE(!event->joined && strcmp(event->member.member, "m2") == 0);
    jk_member_event_free(event);
    EXPECT_ERROR(JK_STATUS_TIMEOUT, "member change", jk_members_watch_next(watch, 0, &event, ERR));
    jk_registration_free(r2);
    jk_registration_free(NULL);
    REQUIRE(jk_registration_close(NULL, NULL) == JK_STATUS_OK);
    jk_members_watch_close(watch);
    printf("liveness: ok\n");
}

int main(void) {
    tc_cluster cluster;
    tc_cluster_start(&cluster, "coord", NODES, NODES);
    const char *addrs[NODES];
    tc_founder_addrs(&cluster, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, NODES, TC_CLUSTER_ID, &client, ERR));
    uint64_t id = 0;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_coord_next_id(NULL, "ids", &id, ERR));

    test_leases(client);
    test_locks(client);
    test_elections(client);
    test_ids(client);
    test_liveness(client);

    jk_client_free(client);
    tc_cluster_stop(&cluster);
    printf("coord_test: ok\n");
    return 0;
}
