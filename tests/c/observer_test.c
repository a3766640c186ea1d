/* Observers through the C ABI: an embedded 3-node cluster and a 4th node started with
 * jk_server_start_observer (parents: the founders). Entries written before and after it starts
 * reach it: its standing is OBSERVER and a NONE read on it sees them. It is listed among the
 * observers of the cluster configuration, converted to a voter with jk_admin_convert_role (its
 * standing becomes MEMBER, the voters are four) and back to an observer (three voters again,
 * it goes on pulling). Wrong arguments are refused with JK_STATUS_INVALID_ARGUMENT. */
#define _GNU_SOURCE
#include "test_cluster.h"

#define FOUNDERS 3
#define CLUSTER_ID TC_CLUSTER_ID
#define ENTRIES 10

static jk_standing standing_of(jk_server *server) {
    jk_server_standing_info info;
    CHECK(jk_server_standing(server, &info, ERR));
    return info.standing;
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
 * its own state (NONE). */
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
    if (st == JK_STATUS_OK) {
        jk_entries_free(entries);
    }
    jk_client_free(direct);
    return ok;
}

/* (voters, observers) of the configuration; whether node `id` is among the observers. */
static int config_is(jk_client *client, size_t voters, uint64_t observer_id, int is_observer) {
    jk_cluster_configuration *conf = NULL;
    CHECK(jk_admin_cluster_configuration(client, &conf, ERR));
    int found = 0;
    for (size_t i = 0; i < conf->observers_len; i++) {
        found |= conf->observers[i].node_id == observer_id;
    }
    int ok = !conf->is_joint && conf->voters_len == voters && found == is_observer;
    jk_cluster_configuration_free(conf);
    return ok;
}

int main(void) {
    /* 1. Three founders (and room for the observer); a client that knows only them. */
    tc_cluster cluster;
    tc_cluster_start(&cluster, "observer", FOUNDERS + 1, FOUNDERS);
    jk_server **servers = cluster.servers;
    const char *founders[FOUNDERS];
    tc_founder_addrs(&cluster, founders);
    jk_client *client = NULL;
    jk_client_config ccfg = {.cluster_id = CLUSTER_ID, .request_timeout_ms = 30000};
    CHECK(jk_client_connect_with(founders, FOUNDERS, &ccfg, &client, ERR));
    append_entries(client, 0, ENTRIES);

    /* 2. The observer: refused without parents or with a bad one, then started. */
    jk_server_config obs = {
        .node_id = 4,
        .listen = cluster.addrs[3],
        .cluster_id = CLUSTER_ID,
        .data_dir = cluster.dirs[3],
    };
    jk_server *refused = NULL;
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "parent",
                 jk_server_start_observer(&obs, NULL, 0, &refused, ERR));
    const char *bad[] = {"nowhere"};
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "parents[0]",
                 jk_server_start_observer(&obs, bad, 1, &refused, ERR));
    REQUIRE(refused == NULL);
    CHECK(jk_server_start_observer(&obs, founders, FOUNDERS, &servers[3], ERR));
    REQUIRE(standing_of(servers[3]) == JK_STANDING_OBSERVER);
    REQUIRE(strcmp(jk_standing_name(JK_STANDING_OBSERVER), "OBSERVER") == 0);
    append_entries(client, ENTRIES, ENTRIES);
    EVENTUALLY(node_holds(cluster.addrs[3], 2 * ENTRIES));
    EVENTUALLY(config_is(client, FOUNDERS, 4, 1));

    /* 3. Refusals: an unknown role, a node that is neither voter nor observer. */
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "jk_member_role", jk_admin_convert_role(client, 4, 7, 0, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "neither",
                 jk_admin_convert_role(client, 9, JK_MEMBER_ROLE_VOTER, 0, ERR));

    /* 4. To a voter: four voters, no longer an observer; it keeps the entries. */
    CHECK(jk_admin_convert_role(client, 4, JK_MEMBER_ROLE_VOTER, 0, ERR));
    REQUIRE(config_is(client, FOUNDERS + 1, 4, 0));
    EVENTUALLY(standing_of(servers[3]) == JK_STANDING_MEMBER);
    append_entries(client, 2 * ENTRIES, ENTRIES);
    EVENTUALLY(node_holds(cluster.addrs[3], 3 * ENTRIES));
    /* Converting to the role it has is done already. */
    CHECK(jk_admin_convert_role(client, 4, JK_MEMBER_ROLE_VOTER, 0, ERR));

    /* 5. Back to an observer: three voters, it goes on pulling. */
    CHECK(jk_admin_convert_role(client, 4, JK_MEMBER_ROLE_OBSERVER, 0, ERR));
    REQUIRE(config_is(client, FOUNDERS, 4, 1));
    EVENTUALLY(standing_of(servers[3]) == JK_STANDING_OBSERVER);
    append_entries(client, 3 * ENTRIES, ENTRIES);
    EVENTUALLY(node_holds(cluster.addrs[3], 4 * ENTRIES));

    jk_client_free(client);
    tc_cluster_stop(&cluster);
    printf("observer_test: ok\n");
    return 0;
}
