/* Journal transactions through the C ABI on an embedded 3-node cluster:
 * (a) argument errors: NULL client / out-pointer / context arrays, a key given twice, a timeout
 *     out of bounds;
 * (b) commit: a transaction with a context appends to two partitions; before the commit no
 *     reader at any level sees any of it (the partitions' max indices stay, a get at the old end
 *     is INDEX_OVERFLOW) and jk_txn_opening lists it OPEN with its entries, bytes, partitions and
 *     context; after jk_txn_commit every entry is readable in append order, each batch keeping
 *     its batch size and offsets, all with one store time; the transaction is no longer listed
 *     and a second commit or an append fails with INVALID_ARGUMENT ("not open");
 * (c) abort: an aborted transaction's entries never appear (a later plain append is the next
 *     entry of the partition), a second abort reports it gone, a commit fails with
 *     INVALID_ARGUMENT; the list ends empty.
 * Every wait is bounded by the client's request timeout. */
#define _GNU_SOURCE
#include "test_cluster.h"

#define NODES 3
#define LEVELS 3

static const uint32_t levels[LEVELS] = {JK_QUERY_CONSISTENCY_STRICT, JK_QUERY_CONSISTENCY_SEQUENTIAL,
                                        JK_QUERY_CONSISTENCY_NONE};

static jk_bytes text(const char *s) { return (jk_bytes){(const uint8_t *)s, strlen(s)}; }

static int payload_is(const jk_entry *e, const char *s) {
    return e->payload_len == strlen(s) && memcmp(e->payload, s, e->payload_len) == 0;
}

/* The index the next entry of `partition` gets, read at `level`. */
static uint64_t max_index(jk_client *client, uint16_t partition, uint32_t level) {
    jk_indices *indices = NULL;
    CHECK(jk_journal_max_indices(client, level, &indices, ERR));
    uint64_t found = JK_NO_INDEX;
    for (size_t i = 0; i < indices->len; i++) {
        if (indices->items[i].partition == partition) {
            found = indices->items[i].index;
        }
    }
    jk_indices_free(indices);
    REQUIRE(found != JK_NO_INDEX);
    return found;
}

/* Nothing of `partition` at or after `end` is readable at any level (on the node each level
 * reaches; at NONE that node may not have applied everything before `end` yet). */
static void nothing_after(jk_client *client, uint16_t partition, uint64_t end) {
    for (int l = 0; l < LEVELS; l++) {
        uint64_t max = max_index(client, partition, levels[l]);
        REQUIRE(levels[l] == JK_QUERY_CONSISTENCY_NONE ? max <= end : max == end);
        jk_entries *entries = NULL;
        EXPECT_ERROR(JK_STATUS_INDEX_OVERFLOW, "",
                     jk_journal_get(client, partition, end, 16, levels[l], &entries, ERR));
        REQUIRE(entries == NULL);
    }
}

/* The transaction `tx` in a list from jk_txn_opening, or NULL. */
static const jk_txn_info *find(const jk_txn_infos *list, uint64_t tx) {
    for (size_t i = 0; i < list->len; i++) {
        if (list->items[i].tx == tx) {
            return &list->items[i];
        }
    }
    return NULL;
}

static const char *context_value(const jk_txn_info *t, const char *key) {
    for (size_t i = 0; i < t->context_len; i++) {
        if (strcmp(t->context[i].key, key) == 0) {
            return t->context[i].value;
        }
    }
    return NULL;
}

static int is_listed(jk_client *client, uint64_t tx) {
    jk_txn_infos *list = NULL;
    CHECK(jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    int listed = find(list, tx) != NULL;
    jk_txn_infos_free(list);
    return listed;
}

static void test_arguments(jk_client *client) {
    const char *keys[] = {"k", "k"};
    const char *values[] = {"v1", "v2"};
    uint64_t tx = 0;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_txn_create(NULL, NULL, NULL, 0, 0, &tx, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "tx_out", jk_txn_create(client, NULL, NULL, 0, 0, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "context_keys", jk_txn_create(client, NULL, values, 1, 0, &tx, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "context_values", jk_txn_create(client, keys, NULL, 1, 0, &tx, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "given twice", jk_txn_create(client, keys, values, 2, 0, &tx, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "timeout", jk_txn_create(client, NULL, NULL, 0, 1, &tx, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_txn_append(NULL, 1, 0, NULL, 0, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "entries", jk_txn_append(client, 1, 0, NULL, 1, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_txn_commit(NULL, 1, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_txn_abort(NULL, 1, NULL, ERR));
    jk_txn_infos *list = NULL;
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "out", jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "consistency", jk_txn_opening(client, 7, &list, ERR));
    REQUIRE(list == NULL);
    jk_txn_infos_free(NULL);
    /* Nothing was created by the failed calls. */
    CHECK(jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    REQUIRE(list->len == 0);
    jk_txn_infos_free(list);
    printf("arguments: ok\n");
}

static void test_commit(jk_client *client) {
    const uint64_t end1 = max_index(client, 1, JK_QUERY_CONSISTENCY_STRICT);
    const uint64_t end2 = max_index(client, 2, JK_QUERY_CONSISTENCY_STRICT);
    const char *keys[] = {"order", "source"};
    const char *values[] = {"42", "c"};
    uint64_t tx = 0, held = 0;
    CHECK(jk_txn_create(client, keys, values, 2, 30000, &tx, ERR));
    REQUIRE(tx != 0);

    jk_bytes first[] = {text("a1"), text("a2")};
    jk_bytes other[] = {text("b1")};
    jk_bytes last[] = {text("a3")};
    CHECK(jk_txn_append(client, tx, 1, first, 2, &held, ERR));
    REQUIRE(held == 2);
    CHECK(jk_txn_append(client, tx, 2, other, 1, &held, ERR));
    REQUIRE(held == 3);
    CHECK(jk_txn_append(client, tx, 1, last, 1, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "partition", jk_txn_append(client, tx, 9, last, 1, NULL, ERR));

    /* Nothing is readable before the commit. */
    nothing_after(client, 1, end1);
    nothing_after(client, 2, end2);
    jk_txn_infos *list = NULL;
    CHECK(jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    const jk_txn_info *t = find(list, tx);
    REQUIRE(t != NULL);
    REQUIRE(t->phase == JK_TXN_PHASE_OPEN);
    REQUIRE(t->entries == 4 && t->bytes == 8);
    REQUIRE(t->partitions_len == 2 && t->partitions[0] == 1 && t->partitions[1] == 2);
    REQUIRE(t->context_len == 2);
    REQUIRE(strcmp(context_value(t, "order"), "42") == 0);
    REQUIRE(strcmp(context_value(t, "source"), "c") == 0);
    jk_txn_infos_free(list);

    CHECK(jk_txn_commit(client, tx, ERR));
    /* Visible at once (commit returns once published), in append order, batches kept. */
    jk_entries *got = NULL;
    CHECK(jk_journal_get(client, 1, end1, 16, JK_QUERY_CONSISTENCY_STRICT, &got, ERR));
    REQUIRE(got->len == 3);
    const jk_entry *e = got->entries;
    REQUIRE(payload_is(&e[0], "a1") && e[0].batch_size == 2 && e[0].offset == 0 && e[0].index == end1);
    REQUIRE(payload_is(&e[1], "a2") && e[1].batch_size == 2 && e[1].offset == 1);
    REQUIRE(payload_is(&e[2], "a3") && e[2].batch_size == 1 && e[2].offset == 0);
    REQUIRE(e[0].timestamp_ms == e[1].timestamp_ms && e[1].timestamp_ms == e[2].timestamp_ms);
    const uint64_t stored = e[0].timestamp_ms;
    jk_entries_free(got);
    CHECK(jk_journal_get(client, 2, end2, 16, JK_QUERY_CONSISTENCY_STRICT, &got, ERR));
    REQUIRE(got->len == 1);
    REQUIRE(payload_is(&got->entries[0], "b1") && got->entries[0].batch_size == 1);
    REQUIRE(got->entries[0].timestamp_ms == stored);
    jk_entries_free(got);
    REQUIRE(max_index(client, 1, JK_QUERY_CONSISTENCY_STRICT) == end1 + 3);
    REQUIRE(max_index(client, 2, JK_QUERY_CONSISTENCY_STRICT) == end2 + 1);

    /* Ended: no longer listed; a second commit and an append are refused. */
    REQUIRE(!is_listed(client, tx));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not open", jk_txn_commit(client, tx, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not open", jk_txn_append(client, tx, 1, last, 1, NULL, ERR));
    printf("commit: ok\n");
}

static void test_abort(jk_client *client) {
    const uint64_t end1 = max_index(client, 1, JK_QUERY_CONSISTENCY_STRICT);
    uint64_t tx = 0, held = 0;
    /* No context, the default timeout. */
    CHECK(jk_txn_create(client, NULL, NULL, 0, 0, &tx, ERR));
    jk_bytes lost[] = {text("lost1"), text("lost2")};
    CHECK(jk_txn_append(client, tx, 1, lost, 2, &held, ERR));
    REQUIRE(held == 2);
    jk_txn_infos *list = NULL;
    CHECK(jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    const jk_txn_info *t = find(list, tx);
    REQUIRE(t != NULL && t->phase == JK_TXN_PHASE_OPEN && t->context_len == 0 && t->entries == 2);
    jk_txn_infos_free(list);

    bool existed = false;
    CHECK(jk_txn_abort(client, tx, &existed, ERR));
    REQUIRE(existed);
    CHECK(jk_txn_abort(client, tx, &existed, ERR));
    REQUIRE(!existed);
    CHECK(jk_txn_abort(client, tx, NULL, ERR));
    REQUIRE(!is_listed(client, tx));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "not open", jk_txn_commit(client, tx, ERR));

    /* A plain append after the abort is the partition's next entry: the aborted ones never
     * took a place before it. */
    jk_bytes after[] = {text("after")};
    uint64_t index = 0;
    CHECK(jk_journal_append(client, 1, after, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, ERR));
    REQUIRE(index == end1);
    jk_entries *got = NULL;
    CHECK(jk_journal_get(client, 1, end1, 16, JK_QUERY_CONSISTENCY_STRICT, &got, ERR));
    REQUIRE(got->len == 1 && payload_is(&got->entries[0], "after"));
    jk_entries_free(got);

    CHECK(jk_txn_opening(client, JK_QUERY_CONSISTENCY_STRICT, &list, ERR));
    REQUIRE(list->len == 0);
    jk_txn_infos_free(list);
    printf("abort: ok\n");
}

int main(void) {
    tc_cluster cluster;
    tc_cluster_start(&cluster, "txn", NODES, NODES);
    const char *addrs[NODES];
    tc_founder_addrs(&cluster, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, NODES, TC_CLUSTER_ID, &client, ERR));
    const uint16_t partitions[] = {0, 1, 2};
    CHECK(jk_journal_scale_partitions(client, partitions, 3, ERR));
    /* Partition 1 does not start empty. */
    jk_bytes before[] = {text("before")};
    CHECK(jk_journal_append(client, 1, before, 1, JK_RESPONSE_CONFIG_REPLICATION, NULL, ERR));

    test_arguments(client);
    test_commit(client);
    test_abort(client);

    jk_client_free(client);
    tc_cluster_stop(&cluster);
    printf("txn_test: ok\n");
    return 0;
}
