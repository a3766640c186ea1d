/* ONE_WAY appends through the C ABI on an embedded 3-node cluster: a client whose first address
 * is a follower appends 200 one-way entries and is freed right after the last one; a fresh
 * client then finds all 200, in order, with a STRICT read. Also: jk_client_flush. */
#define _GNU_SOURCE
#include "test_cluster.h"

#define NODES 3
#define CLUSTER_ID TC_CLUSTER_ID
#define COUNT 200
#define PARTITION 0

/* Appends COUNT one-way entries "<round>.<k>" through a client whose addresses start at a
 * follower; `flush` says whether to call jk_client_flush before jk_client_free. */
static void send_round(const char *const *addr_list, int round, int flush) {
    jk_client *client = NULL;
    CHECK(jk_client_connect(addr_list, NODES, CLUSTER_ID, &client, ERR));
    for (int k = 0; k < COUNT; k++) {
        char text[32];
        int n = snprintf(text, sizeof text, "%d.%d", round, k);
        jk_bytes entry = {(const uint8_t *)text, (size_t)n};
        uint64_t index = 7;
        CHECK(jk_journal_append(client, PARTITION, &entry, 1, JK_RESPONSE_CONFIG_ONE_WAY, &index, ERR));
    }
    if (flush) {
        CHECK(jk_client_flush(client, 10000, ERR));
    }
    jk_client_free(client); /* flushes what is left, bounded */
}

/* Reads the whole partition STRICT through a fresh client and checks it holds `rounds` rounds. */
static void expect_rounds(const char *const *addr_list, int rounds) {
    jk_client *reader = NULL;
    CHECK(jk_client_connect(addr_list, NODES, CLUSTER_ID, &reader, ERR));
    uint64_t next = 0;
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < COUNT; k++) {
            jk_entries *entries = NULL;
            CHECK(jk_journal_get(reader, PARTITION, next, 1, JK_QUERY_CONSISTENCY_STRICT, &entries, ERR));
            char want[32];
            int n = snprintf(want, sizeof want, "%d.%d", round, k);
            REQUIRE(entries->len == 1);
            if (entries->entries[0].payload_len != (size_t)n ||
                memcmp(entries->entries[0].payload, want, (size_t)n) != 0) {
                fprintf(stderr, "index %llu: expected %s, found %.*s\n", (unsigned long long)next, want,
                        (int)entries->entries[0].payload_len, (const char *)entries->entries[0].payload);
                exit(1);
            }
            jk_entries_free(entries);
            next++;
        }
    }
    jk_entries *past = NULL;
    jk_error *err = NULL;
    REQUIRE(jk_journal_get(reader, PARTITION, next, 1, JK_QUERY_CONSISTENCY_STRICT, &past, &err) ==
            JK_STATUS_INDEX_OVERFLOW);
    jk_error_free(err);
    jk_client_free(reader);
    printf("%d one-way entries stored, in order\n", rounds * COUNT);
}

int main(void) {
    tc_cluster cluster;
    tc_cluster_start(&cluster, "one-way", NODES, NODES);
    uint64_t leader = 0;
    CHECK(jk_server_wait_for_leader(cluster.servers[0], TC_WAIT_MS, &leader, ERR));
    const char(*addrs)[32] = cluster.addrs;
    /* Follower first: node ids are 1..3, so index leader % NODES is a follower. */
    const char *addr_list[NODES];
    for (int i = 0; i < NODES; i++) {
        addr_list[i] = addrs[(leader + (uint64_t)i) % NODES];
    }
    REQUIRE(strcmp(addr_list[0], addrs[leader - 1]) != 0);

    send_round(addr_list, 0, 0); /* freed right after the last send */
    expect_rounds(addr_list, 1);
    send_round(addr_list, 1, 1); /* flushed explicitly, then freed */
    expect_rounds(addr_list, 2);

    tc_cluster_stop(&cluster);
    printf("done\n");
    return 0;
}
