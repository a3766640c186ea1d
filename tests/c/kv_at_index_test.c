/* KV reads at an index through the C ABI on an embedded 3-node cluster (the two-step read):
 * jk_client_sync gives the leader's applied index after two writes; after the keys change,
 * jk_kv_get_at and jk_kv_list_at at that index still return the state of then, on a client of
 * a follower too; an index nobody applied is INDEX_OVERFLOW; bad arguments are refused. */
#define _GNU_SOURCE
#include "test_cluster.h"

#define NODES 3

static jk_bytes text(const char *s) { return (jk_bytes){(const uint8_t *)s, strlen(s)}; }

static int buffer_is(const jk_buffer *b, const char *s) {
    return b != NULL && b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static void check_state_at(jk_client *client, uint64_t index) {
    jk_buffer *v = NULL;
    CHECK(jk_kv_get_at(client, "color", index, &v, ERR));
    REQUIRE(buffer_is(v, "red"));
    jk_buffer_free(v);
    v = NULL;
    CHECK(jk_kv_get_at(client, "size", index, &v, ERR));
    REQUIRE(buffer_is(v, "L"));
    jk_buffer_free(v);
    v = NULL;
    CHECK(jk_kv_get_at(client, "shape", index, &v, ERR));
    REQUIRE(v == NULL); /* written later */

    jk_kv_entries *list = NULL;
    CHECK(jk_kv_list_at(client, "", index, &list, ERR));
    REQUIRE(list->len == 2);
    REQUIRE(strcmp(list->entries[0].key, "color") == 0 && list->entries[0].key_len == 5);
    REQUIRE(list->entries[0].value.len == 3 && memcmp(list->entries[0].value.data, "red", 3) == 0);
    REQUIRE(strcmp(list->entries[1].key, "size") == 0);
    jk_kv_entries_free(list);
}

int main(void) {
    tc_cluster cluster;
    tc_cluster_start(&cluster, "kvat", NODES, NODES);
    const char *addrs[NODES];
    tc_founder_addrs(&cluster, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, NODES, TC_CLUSTER_ID, &client, ERR));

    CHECK(jk_kv_set(client, "color", text("red"), NULL, ERR));
    CHECK(jk_kv_set(client, "size", text("L"), NULL, ERR));
    uint64_t then = 0;
    CHECK(jk_client_sync(client, &then, ERR));
    REQUIRE(then > 0);
    CHECK(jk_kv_set(client, "color", text("blue"), NULL, ERR));
    CHECK(jk_kv_remove(client, "size", NULL, ERR));
    CHECK(jk_kv_set(client, "shape", text("round"), NULL, ERR));

    check_state_at(client, then);
    /* Every node serves it: a client that knows one node only. */
    for (int i = 0; i < NODES; i++) {
        jk_client *one = NULL;
        CHECK(jk_client_connect(&addrs[i], 1, TC_CLUSTER_ID, &one, ERR));
        check_state_at(one, then);
        jk_client_free(one);
    }

    jk_buffer *v = NULL;
    EXPECT_ERROR(JK_STATUS_INDEX_OVERFLOW, "not applied", jk_kv_get_at(client, "color", then + 1000000, &v, ERR));
    REQUIRE(v == NULL);
    jk_kv_entries *list = NULL;
    EXPECT_ERROR(JK_STATUS_INDEX_OVERFLOW, "not applied", jk_kv_list_at(client, "", then + 1000000, &list, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_kv_get_at(NULL, "color", then, &v, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "value_out", jk_kv_get_at(client, "color", then, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "key", jk_kv_get_at(client, "", then, &v, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "prefix", jk_kv_list_at(client, NULL, then, &list, ERR));

    jk_client_free(client);
    tc_cluster_stop(&cluster);
    printf("kv_at_index_test: ok\n");
    return 0;
}
