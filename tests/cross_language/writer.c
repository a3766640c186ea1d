/* Cross-language test, C side: connects to a cluster started elsewhere (by the Python test),
 * appends N entries to a partition one call each, sets a KV key, reads its entries back, and
 * prints what it did as one JSON object on stdout:
 *
 *   writer <cluster_id> <addr,addr,...> <partition> <n> <key> <value>
 *   {"lang":"c","partition":1,"indices":[...],"payloads":["c-0",...],"kv_key":"...",
 *    "kv_value":"..."}
 *
 * Payloads are "c-<i>" (ASCII), so the JSON needs no escaping. Exits non-zero on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journalkeeper.h"

#define MAX_ADDRS 16
#define MAX_N 1000

static void fail(const char *what, jk_status st, jk_error *err) {
    fprintf(stderr, "writer.c: %s failed: %s: %s\n", what, jk_status_code(st),
            err ? jk_error_message(err) : "");
    jk_error_free(err);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s <cluster_id> <addr,addr,...> <partition> <n> <key> <value>\n",
                argv[0]);
        return 2;
    }
    uint64_t cluster_id = strtoull(argv[1], NULL, 10);
    char *addr_buf = argv[2];
    const char *addrs[MAX_ADDRS];
    size_t n_addrs = 0;
    for (char *tok = strtok(addr_buf, ","); tok && n_addrs < MAX_ADDRS; tok = strtok(NULL, ",")) {
        addrs[n_addrs++] = tok;
    }
    uint16_t partition = (uint16_t)atoi(argv[3]);
    int n = atoi(argv[4]);
    const char *key = argv[5], *value = argv[6];
    if (n_addrs == 0 || n <= 0 || n > MAX_N) {
        fprintf(stderr, "writer.c: bad arguments\n");
        return 2;
    }

    jk_error *err = NULL;
    jk_client *client = NULL;
    jk_status st = jk_client_connect(addrs, n_addrs, cluster_id, &client, &err);
    if (st != JK_STATUS_OK) fail("jk_client_connect", st, err);

    static uint64_t indices[MAX_N];
    char payload[32];
    for (int i = 0; i < n; i++) {
        snprintf(payload, sizeof payload, "c-%d", i);
        jk_bytes entry = {(const uint8_t *)payload, strlen(payload)};
        st = jk_journal_append(client, partition, &entry, 1, JK_RESPONSE_CONFIG_REPLICATION,
                               &indices[i], &err);
        if (st != JK_STATUS_OK) fail("jk_journal_append", st, err);
        if (indices[i] == JK_NO_INDEX) {
            fprintf(stderr, "writer.c: REPLICATION append returned no index\n");
            return 1;
        }
    }
    st = jk_kv_set(client, key, (jk_bytes){(const uint8_t *)value, strlen(value)}, NULL, &err);
    if (st != JK_STATUS_OK) fail("jk_kv_set", st, err);

    /* Read our own entries back (the Python side checks them too). */
    for (int i = 0; i < n; i++) {
        jk_entries *got = NULL;
        st = jk_journal_get(client, partition, indices[i], 1, JK_QUERY_CONSISTENCY_STRICT, &got, &err);
        if (st != JK_STATUS_OK) fail("jk_journal_get", st, err);
        snprintf(payload, sizeof payload, "c-%d", i);
        if (got->len != 1 || got->entries[0].index != indices[i] ||
            got->entries[0].payload_len != strlen(payload) ||
            memcmp(got->entries[0].payload, payload, strlen(payload)) != 0) {
            fprintf(stderr, "writer.c: entry %d read back differs\n", i);
            return 1;
        }
        jk_entries_free(got);
    }

    printf("{\"lang\":\"c\",\"partition\":%u,\"indices\":[", (unsigned)partition);
    for (int i = 0; i < n; i++) printf("%s%llu", i ? "," : "", (unsigned long long)indices[i]);
    printf("],\"payloads\":[");
    for (int i = 0; i < n; i++) printf("%s\"c-%d\"", i ? "," : "", i);
    printf("],\"kv_key\":\"%s\",\"kv_value\":\"%s\"}\n", key, value);
    jk_client_free(client);
    return 0;
}
