/* Live administration through the C ABI, as a C program would do it: an embedded 3-node cluster
 * and a 4th node started with jk_server_start_joining. The 4th node is added as a voter (it
 * then holds every entry written before), leadership is transferred to it, it becomes and stops
 * being the preferred leader, and it is removed (jk_server_wait_for_removed returns, its
 * standing is REMOVED, the others keep serving). Refusals carry the right status and a message
 * naming what is wrong; a change to a node that never catches up times out and leaves the
 * voters as they were. */
#define _GNU_SOURCE
#include "test_cluster.h"

#define FOUNDERS 3
#define CLUSTER_ID TC_CLUSTER_ID
#define ENTRIES 20
#define WAIT_MS TC_WAIT_MS

/* Whether `members` holds exactly the node ids `want` (any order). */
static int same_ids(const jk_member *members, size_t len, const uint64_t *want, size_t want_len) {
    if (len != want_len) {
        return 0;
    }
    for (size_t i = 0; i < want_len; i++) {
        int found = 0;
        for (size_t j = 0; j < len; j++) {
            found |= members[j].node_id == want[i];
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* The settled voters are exactly `want` (no change in progress, no learner left over). */
static int voters_are(jk_client *client, const uint64_t *want, size_t want_len) {
    jk_cluster_configuration *conf = NULL;
    CHECK(jk_admin_cluster_configuration(client, &conf, ERR));
    int ok = !conf->is_joint && conf->joint_old_voters_len == 0 && conf->observers_len == 0 &&
             same_ids(conf->voters, conf->voters_len, want, want_len);
    jk_cluster_configuration_free(conf);
    return ok;
}

/* The node id of the leader the configuration names (0: none). */
static uint64_t configured_leader(jk_client *client) {
    jk_cluster_configuration *conf = NULL;
    CHECK(jk_admin_cluster_configuration(client, &conf, ERR));
    uint64_t id = conf->leader ? conf->leader->node_id : 0;
    jk_cluster_configuration_free(conf);
    return id;
}

static jk_standing standing_of(jk_server *server) {
    jk_server_standing_info info;
    CHECK(jk_server_standing(server, &info, ERR));
    return info.standing;
}

static uint64_t preferred_leader_of(jk_server *server) {
    jk_server_standing_info info;
    CHECK(jk_server_standing(server, &info, ERR));
    return info.preferred_leader_id;
}

static jk_role role_of(jk_server *server) {
    jk_server_info info;
    CHECK(jk_server_status(server, &info, ERR));
    return info.role;
}

static void append_entries(jk_client *client, int from, int n) {
    for (int k = from; k < from + n; k++) {
        char text[16];
        int len = snprintf(text, sizeof text, "e%d", k);
        jk_bytes entry = {(const uint8_t *)text, (size_t)len};
        uint64_t index = 0;
        CHECK(jk_journal_append(client, 0, &entry, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, ERR));
        REQUIRE(index == (uint64_t)k);
    }
}

/* Whether the node at `addr` holds exactly the entries e0..e<n-1> of partition 0, read from
 * its own state (NONE), so that what it replicated is checked, not what the leader has. */
static int node_holds(const char *addr, int n) {
    jk_client *direct = NULL;
    CHECK(jk_client_connect(&addr, 1, CLUSTER_ID, &direct, ERR));
    jk_entries *entries = NULL;
    jk_status st = jk_journal_get(direct, 0, 0, 4096, JK_QUERY_CONSISTENCY_NONE, &entries, NULL);
    int ok = st == JK_STATUS_OK && entries->len == (size_t)n;
    for (size_t i = 0; ok && i < entries->len; i++) {
        char want[16];
        int len = snprintf(want, sizeof want, "e%zu", i);
        ok = entries->entries[i].payload_len == (size_t)len &&
             memcmp(entries->entries[i].payload, want, (size_t)len) == 0;
    }
    jk_entries_free(entries);
    jk_client_free(direct);
    return ok;
}

int main(void) {
    /* 1. Three founders (and room for a 4th node); a client that knows only them. */
    tc_cluster cluster;
    tc_cluster_start(&cluster, "admin", FOUNDERS + 1, FOUNDERS);
    const char(*addrs)[32] = cluster.addrs;
    jk_server **servers = cluster.servers;
    jk_peer *peers = cluster.peers;
    const char *founders[FOUNDERS];
    tc_founder_addrs(&cluster, founders);
    jk_client *client = NULL;
    jk_client_config ccfg = {.cluster_id = CLUSTER_ID, .request_timeout_ms = 30000};
    CHECK(jk_client_connect_with(founders, FOUNDERS, &ccfg, &client, ERR));
    const uint64_t three[] = {1, 2, 3}, four[] = {1, 2, 3, 4};
    REQUIRE(voters_are(client, three, 3));
    REQUIRE(standing_of(servers[0]) == JK_STANDING_MEMBER);
    REQUIRE(preferred_leader_of(servers[0]) == 0);
    append_entries(client, 0, ENTRIES);

    /* 2. A 4th node joins through the founders: it is not a member until added. */
    jk_server_config joiner = {
        .node_id = 4,
        .listen = addrs[3],
        .cluster_id = CLUSTER_ID,
        .data_dir = cluster.dirs[3],
        .peers = NULL,
        .peers_len = 0,
    };
    jk_server *refused = NULL;
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "at least one member",
                 jk_server_start_joining(&joiner, &refused, ERR));
    REQUIRE(refused == NULL);
    joiner.peers = peers;
    joiner.peers_len = FOUNDERS;
    CHECK(jk_server_start_joining(&joiner, &servers[3], ERR));
    REQUIRE(standing_of(servers[3]) == JK_STANDING_JOINING);
    REQUIRE(strcmp(jk_standing_name(JK_STANDING_JOINING), "JOINING") == 0);

    /* 3. Refusals, before it is a voter. */
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not a voter", jk_admin_transfer_leader(client, 4, 5000, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not a voter", jk_admin_set_preferred_leader(client, 4, ERR));
    const uint64_t wrong_old[] = {1, 2};
    jk_member keep[] = {{1, ""}, {2, NULL}, {3, ""}}, unknown[] = {{1, ""}, {2, ""}, {3, ""}, {7, NULL}};
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not the current voters",
                 jk_admin_update_voters(client, wrong_old, 2, keep, 2, 0, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "no known address",
                 jk_admin_update_voters(client, three, 3, unknown, 4, 0, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "exceeds",
                 jk_admin_add_voter(client, 4, addrs[3], JK_MAX_ADMIN_TIMEOUT_MS + 1, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "exceeds",
                 jk_admin_transfer_leader(client, 2, UINT64_MAX, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "nowhere", jk_admin_add_voter(client, 4, "nowhere", 0, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "addr", jk_admin_add_voter(client, 4, NULL, 0, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "old_voters", jk_admin_update_voters(client, NULL, 3, keep, 3, 0, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_admin_remove_voter(NULL, 4, 0, ERR));
    /* Re-stating the current voters is a change of nothing. */
    CHECK(jk_admin_update_voters(client, three, 3, keep, 3, 0, ERR));
    REQUIRE(voters_are(client, three, 3));
    REQUIRE(standing_of(servers[3]) == JK_STANDING_JOINING);

    /* 4. Added: it is a voter and member, and holds what was written before and after. */
    CHECK(jk_admin_add_voter(client, 4, addrs[3], 30000, ERR));
    REQUIRE(voters_are(client, four, 4));
    EVENTUALLY(standing_of(servers[3]) == JK_STANDING_MEMBER);
    append_entries(client, ENTRIES, 5);
    EVENTUALLY(node_holds(addrs[3], ENTRIES + 5));

    /* 5. Leadership moves to it; it becomes, then stops being, the preferred leader. */
    CHECK(jk_admin_transfer_leader(client, 4, 30000, ERR));
    REQUIRE(configured_leader(client) == 4);
    EVENTUALLY(role_of(servers[3]) == JK_ROLE_LEADER);
    CHECK(jk_admin_set_preferred_leader(client, 4, ERR));
    for (int i = 0; i < FOUNDERS + 1; i++) {
        EVENTUALLY(preferred_leader_of(servers[i]) == 4);
    }
    CHECK(jk_admin_set_preferred_leader(client, 0, ERR)); /* 0 clears it */
    for (int i = 0; i < FOUNDERS + 1; i++) {
        EVENTUALLY(preferred_leader_of(servers[i]) == 0);
    }

    /* 6. Removed while it leads: it learns it, the founders lead and serve on. */
    EXPECT_ERROR(JK_STATUS_TIMEOUT, "not removed", jk_server_wait_for_removed(servers[3], 20, ERR));
    CHECK(jk_admin_remove_voter(client, 4, 30000, ERR));
    CHECK(jk_server_wait_for_removed(servers[3], WAIT_MS, ERR));
    REQUIRE(standing_of(servers[3]) == JK_STANDING_REMOVED);
    REQUIRE(strcmp(jk_standing_name(standing_of(servers[3])), "REMOVED") == 0);
    REQUIRE(voters_are(client, three, 3));
    /* The write also moves the client off the removed node, which still answers
     * jk_admin_cluster_configuration with its own view (no leader) until it is stopped. */
    append_entries(client, ENTRIES + 5, 5);
    uint64_t leader = 0;
    EVENTUALLY((leader = configured_leader(client)) >= 1 && leader <= FOUNDERS);
    for (int i = 0; i < FOUNDERS; i++) {
        EVENTUALLY(node_holds(addrs[i], ENTRIES + 10));
        REQUIRE(standing_of(servers[i]) == JK_STANDING_MEMBER);
    }
    CHECK(jk_server_stop(servers[3], ERR));
    jk_server_standing_info info;
    EXPECT_ERROR(JK_STATUS_CLOSED, "stopped", jk_server_standing(servers[3], &info, ERR));
    EXPECT_ERROR(JK_STATUS_CLOSED, "stopped", jk_server_wait_for_removed(servers[3], 0, ERR));
    jk_server_free(servers[3]);
    servers[3] = NULL;

    /* 7. A node that is not there never catches up: the change times out and is cancelled. */
    char dead[32];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", tc_free_port());
    EXPECT_ERROR(JK_STATUS_TIMEOUT, "did not catch up", jk_admin_add_voter(client, 9, dead, 1500, ERR));
    EVENTUALLY(voters_are(client, three, 3));
    /* A later change is not blocked. */
    CHECK(jk_admin_transfer_leader(client, leader % FOUNDERS + 1, 30000, ERR));
    REQUIRE(configured_leader(client) == leader % FOUNDERS + 1);

    jk_client_free(client);
    tc_cluster_stop(&cluster);
    printf("done\n");
    return 0;
}
