/* Cross-language state machines, C client: drives a bank hosted elsewhere (by Python in
 * test_state_machines.py) with jk_sm_update, jk_sm_update_batch and jk_sm_query, on the
 * accounts `<prefix>a` and `<prefix>b`, which must not exist yet. Checks every result and
 * every refusal (JK_STATUS_REJECTED with the machine's message), then prints the machine's
 * `balances` answer (STRICT) as one JSON line {"balances": "..."}; exits 1 on any mismatch.
 *
 *   bank_client <cluster_id> <addr,addr,...> <prefix>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journalkeeper.h"

#define MAX_ADDRS 8

static int failures = 0;

static jk_bytes text(const char *s) { return (jk_bytes){.data = (const uint8_t *)s, .len = strlen(s)}; }

static void expect(const char *what, jk_status st, jk_status want_st, const char *got, size_t got_len,
                   const char *want) {
    if (st != want_st || got_len != strlen(want) || memcmp(got, want, got_len) != 0) {
        fprintf(stderr, "bank_client: %s: got %s \"%.*s\", expected %s \"%s\"\n", what, jk_status_code(st),
                (int)got_len, got ? got : "", jk_status_code(want_st), want);
        failures++;
    }
}

/* One jk_sm_update at REPLICATION: its result (OK) or message (a refusal) against `want`. */
static void update(jk_client *c, const char *cmd, jk_status want_st, const char *want) {
    jk_buffer *r = NULL;
    jk_error *err = NULL;
    jk_status st = jk_sm_update(c, "bank", text(cmd), JK_RESPONSE_CONFIG_REPLICATION, &r, &err);
    if (st == JK_STATUS_OK) {
        expect(cmd, st, want_st, (const char *)r->data, r->len, want);
    } else {
        const char *m = err ? jk_error_message(err) : "";
        expect(cmd, st, want_st, m, strlen(m), want);
    }
    jk_buffer_free(r);
    jk_error_free(err);
}

static void query(jk_client *c, const char *q, jk_status want_st, const char *want) {
    jk_buffer *r = NULL;
    jk_error *err = NULL;
    jk_status st = jk_sm_query(c, "bank", text(q), JK_QUERY_CONSISTENCY_STRICT, &r, &err);
    if (st == JK_STATUS_OK) {
        expect(q, st, want_st, (const char *)r->data, r->len, want);
    } else {
        const char *m = err ? jk_error_message(err) : "";
        expect(q, st, want_st, m, strlen(m), want);
    }
    jk_buffer_free(r);
    jk_error_free(err);
}

int main(int argc, char **argv) {
    if (argc != 4 || strlen(argv[3]) > 16) {
        fprintf(stderr, "usage: bank_client <cluster_id> <addr,addr,...> <prefix>\n");
        return 2;
    }
    const char *addrs[MAX_ADDRS];
    size_t n_addrs = 0;
    char *list = argv[2];
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a != NULL && n_addrs < MAX_ADDRS;
         a = strtok_r(NULL, ",", &save)) {
        addrs[n_addrs++] = a;
    }
    jk_client *c = NULL;
    jk_error *err = NULL;
    jk_status st = jk_client_connect(addrs, n_addrs, strtoull(argv[1], NULL, 10), &c, &err);
    if (st != JK_STATUS_OK) {
        fprintf(stderr, "bank_client: connect: %s: %s\n", jk_status_code(st), jk_error_message(err));
        return 1;
    }
    char a[32], b[32], cmd[3][96], want[3][96];
    snprintf(a, sizeof a, "%sa", argv[3]);
    snprintf(b, sizeof b, "%sb", argv[3]);

    snprintf(cmd[0], sizeof cmd[0], "deposit %s 70", a);
    update(c, cmd[0], JK_STATUS_OK, "70");
    snprintf(cmd[0], sizeof cmd[0], "transfer %s %s 100", a, b);
    snprintf(want[0], sizeof want[0], "%s has 70, short of 100", a);
    update(c, cmd[0], JK_STATUS_REJECTED, want[0]);

    /* One log entry of three commands; the refused one changes nothing, the others apply. */
    snprintf(cmd[0], sizeof cmd[0], "deposit %s 5", b);
    snprintf(cmd[1], sizeof cmd[1], "transfer %s %s 1000", b, a);
    snprintf(cmd[2], sizeof cmd[2], "transfer %s %s 20", a, b);
    snprintf(want[1], sizeof want[1], "%s has 5, short of 1000", b);
    jk_bytes batch[3] = {text(cmd[0]), text(cmd[1]), text(cmd[2])};
    jk_sm_results *results = NULL;
    st = jk_sm_update_batch(c, "bank", batch, 3, JK_RESPONSE_CONFIG_REPLICATION, &results, &err);
    if (st != JK_STATUS_OK || results == NULL || results->len != 3) {
        fprintf(stderr, "bank_client: jk_sm_update_batch: %s: %s\n", jk_status_code(st), err ? jk_error_message(err) : "");
        return 1;
    }
    const jk_status want_st[3] = {JK_STATUS_OK, JK_STATUS_REJECTED, JK_STATUS_OK};
    const char *want_text[3] = {"5", want[1], "50"};
    for (int i = 0; i < 3; i++) {
        const jk_sm_result *r = &results->results[i];
        if (r->status == JK_STATUS_OK) {
            expect(cmd[i], r->status, want_st[i], (const char *)r->value.data, r->value.len, want_text[i]);
        } else {
            const char *m = r->message ? r->message : "";
            expect(cmd[i], r->status, want_st[i], m, strlen(m), want_text[i]);
        }
    }
    jk_sm_results_free(results);

    snprintf(cmd[0], sizeof cmd[0], "balance %s", a);
    query(c, cmd[0], JK_STATUS_OK, "50");
    snprintf(cmd[0], sizeof cmd[0], "balance %s", b);
    query(c, cmd[0], JK_STATUS_OK, "25");
    query(c, "overdraft", JK_STATUS_REJECTED, "unknown query b'overdraft'");

    jk_buffer *all = NULL;
    st = jk_sm_query(c, "bank", text("balances"), JK_QUERY_CONSISTENCY_STRICT, &all, &err);
    if (st != JK_STATUS_OK) {
        fprintf(stderr, "bank_client: balances: %s: %s\n", jk_status_code(st), jk_error_message(err));
        return 1;
    }
    /* The answer is `name=N` lines: only [a-z0-9=\n], nothing to escape but the newlines. */
    printf("{\"balances\": \"");
    for (size_t i = 0; i < all->len; i++) {
        if (all->data[i] == '\n') {
            printf("\\n");
        } else {
            putchar(all->data[i]);
        }
    }
    printf("\"}\n");
    jk_buffer_free(all);
    jk_client_free(c);
    return failures ? 1 : 0;
}
