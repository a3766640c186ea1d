/* The built-in SQL database from C: a 3-node embedded cluster; a schema and inserts
 * (jk_sql_execute), a batch failing at its second statement that changes nothing
 * (JK_STATUS_REJECTED naming it), parameters of every jk_sql_type round-tripping through
 * jk_sql_query, reads at each consistency level (NONE on every node, eventually), random()
 * refused, :jk_timestamp_ms bound to the leader's time, and the argument checks. */
#define _GNU_SOURCE
#include "test_cluster.h"

#include <stdint.h>

static jk_sql_value null_v(void) { return (jk_sql_value){.kind = JK_SQL_TYPE_NULL}; }
static jk_sql_value int_v(int64_t i) { return (jk_sql_value){.kind = JK_SQL_TYPE_INTEGER, .integer = i}; }
static jk_sql_value real_v(double r) { return (jk_sql_value){.kind = JK_SQL_TYPE_REAL, .real = r}; }
static jk_sql_value text_v(const char *s) {
    return (jk_sql_value){.kind = JK_SQL_TYPE_TEXT, .data = (const uint8_t *)s, .len = strlen(s)};
}
static jk_sql_value blob_v(const void *b, size_t len) {
    return (jk_sql_value){.kind = JK_SQL_TYPE_BLOB, .data = b, .len = len};
}

static long long wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One statement without parameters. */
static jk_sql_outcome exec1(jk_client *c, const char *sql) {
    jk_sql_statement s = {.sql = sql};
    jk_sql_outcome out = {0};
    CHECK(jk_sql_execute(c, &s, 1, &out, ERR));
    return out;
}

/* The single integer `SELECT` answers at `consistency`. */
static int64_t scalar(jk_client *c, const char *sql, uint32_t consistency) {
    jk_sql_rows *rows = NULL;
    CHECK(jk_sql_query(c, sql, NULL, 0, consistency, &rows, ERR));
    REQUIRE(rows->rows_len == 1 && rows->columns_len == 1);
    REQUIRE(rows->values[0].kind == JK_SQL_TYPE_INTEGER);
    int64_t v = rows->values[0].integer;
    jk_sql_rows_free(rows);
    return v;
}

static int64_t count_at(jk_client *c, uint32_t consistency) {
    return scalar(c, "SELECT count(*) FROM item", consistency);
}

int main(void) {
    tc_cluster c;
    tc_cluster_start(&c, "sql", 3, 3);
    const char *addrs[3];
    tc_founder_addrs(&c, addrs);
    jk_client *client = NULL;
    CHECK(jk_client_connect(addrs, 3, TC_CLUSTER_ID, &client, ERR));

    /* A schema, then inserts with parameters; :jk_timestamp_ms is the leader's time. */
    jk_sql_outcome out = exec1(client,
                               "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                               "qty INTEGER, price REAL, tag BLOB, at INTEGER)");
    REQUIRE(out.rows_affected == 0 && out.last_insert_id == 0);
    long long before = wall_ms();
    jk_sql_value apple[] = {text_v("apple"), int_v(3), real_v(1.25)};
    jk_sql_value pear[] = {text_v("pear"), int_v(5), real_v(2.5)};
    jk_sql_statement inserts[] = {
        {.sql = "INSERT INTO item (name, qty, price, at) VALUES (?1, ?2, ?3, :jk_timestamp_ms)",
         .params = apple, .params_len = 3},
        {.sql = "INSERT INTO item (name, qty, price, at) VALUES (?, ?, ?, :jk_timestamp_ms)",
         .params = pear, .params_len = 3},
    };
    CHECK(jk_sql_execute(client, inserts, 2, &out, ERR));
    long long after = wall_ms();
    REQUIRE(out.rows_affected == 2 && out.last_insert_id == 2);
    int64_t at = scalar(client, "SELECT at FROM item WHERE name = 'apple'", JK_QUERY_CONSISTENCY_STRICT);
    REQUIRE(at >= before - 1000 && at <= after + 1000);
    REQUIRE(scalar(client, "SELECT count(DISTINCT at) FROM item", JK_QUERY_CONSISTENCY_STRICT) == 1);

    /* A batch failing at statement 2 changes nothing; the error names the statement. */
    jk_sql_value plum[] = {text_v("plum")};
    jk_sql_statement failing[] = {
        {.sql = "INSERT INTO item (name, qty) VALUES (?1, 1)", .params = plum, .params_len = 1},
        {.sql = "INSERT INTO item (name, qty) VALUES ('apple', 9)"},
        {.sql = "DELETE FROM item"},
    };
    EXPECT_ERROR(JK_STATUS_REJECTED, "statement 2 (\"INSERT INTO item (name, qty) VALUES ('apple', 9)\")",
                 jk_sql_execute(client, failing, 3, &out, ERR));
    EXPECT_ERROR(JK_STATUS_REJECTED, "UNIQUE", jk_sql_execute(client, failing, 3, &out, ERR));
    REQUIRE(count_at(client, JK_QUERY_CONSISTENCY_STRICT) == 2);
    REQUIRE(scalar(client, "SELECT count(*) FROM item WHERE name = 'plum'", JK_QUERY_CONSISTENCY_STRICT) == 0);

    /* Every type round-trips as a parameter, through a table and through a query. */
    static const uint8_t tag[] = {0, 1, 0xfe, 0xff};
    jk_sql_value kiwi[] = {text_v("kiwi \xe2\x9c\x93"), int_v(INT64_MIN), real_v(-0.125), blob_v(tag, sizeof tag),
                           null_v()};
    jk_sql_statement insert_kiwi = {
        .sql = "INSERT INTO item (name, qty, price, tag, at) VALUES (?1, ?2, ?3, ?4, ?5)", .params = kiwi, .params_len = 5};
    CHECK(jk_sql_execute(client, &insert_kiwi, 1, &out, ERR));
    REQUIRE(out.rows_affected == 1 && out.last_insert_id == 3);
    jk_sql_value by_name[] = {text_v("kiwi \xe2\x9c\x93")};
    jk_sql_rows *rows = NULL;
    CHECK(jk_sql_query(client, "SELECT name, qty, price, tag, at FROM item WHERE name = ?1", by_name, 1,
                       JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    REQUIRE(rows->columns_len == 5 && rows->rows_len == 1);
    const char *names[] = {"name", "qty", "price", "tag", "at"};
    for (int i = 0; i < 5; i++) {
        REQUIRE(strcmp(rows->columns[i], names[i]) == 0);
    }
    const jk_sql_value *v = rows->values;
    REQUIRE(v[0].kind == JK_SQL_TYPE_TEXT && v[0].len == strlen("kiwi \xe2\x9c\x93") &&
            strcmp((const char *)v[0].data, "kiwi \xe2\x9c\x93") == 0);
    REQUIRE(v[1].kind == JK_SQL_TYPE_INTEGER && v[1].integer == INT64_MIN);
    REQUIRE(v[2].kind == JK_SQL_TYPE_REAL && v[2].real == -0.125);
    REQUIRE(v[3].kind == JK_SQL_TYPE_BLOB && v[3].len == sizeof tag && memcmp(v[3].data, tag, sizeof tag) == 0);
    REQUIRE(v[4].kind == JK_SQL_TYPE_NULL && v[4].data == NULL);
    jk_sql_rows_free(rows);
    /* Parameters straight back, an empty blob and a text holding a NUL included. */
    jk_sql_value echo[] = {null_v(), int_v(INT64_MAX), real_v(1e300), blob_v(NULL, 0),
                           {.kind = JK_SQL_TYPE_TEXT, .data = (const uint8_t *)"a\0b", .len = 3}};
    CHECK(jk_sql_query(client, "SELECT ?1 AS n, ?2 AS i, ?3 AS r, ?4 AS b, ?5 AS t", echo, 5,
                       JK_QUERY_CONSISTENCY_SEQUENTIAL, &rows, ERR));
    v = rows->values;
    REQUIRE(rows->rows_len == 1 && strcmp(rows->columns[3], "b") == 0);
    REQUIRE(v[0].kind == JK_SQL_TYPE_NULL);
    REQUIRE(v[1].kind == JK_SQL_TYPE_INTEGER && v[1].integer == INT64_MAX);
    REQUIRE(v[2].kind == JK_SQL_TYPE_REAL && v[2].real == 1e300);
    REQUIRE(v[3].kind == JK_SQL_TYPE_BLOB && v[3].len == 0 && v[3].data != NULL);
    REQUIRE(v[4].kind == JK_SQL_TYPE_TEXT && v[4].len == 3 && memcmp(v[4].data, "a\0b", 4) == 0);
    jk_sql_rows_free(rows);
    /* No rows: the columns still come, values is NULL. */
    CHECK(jk_sql_query(client, "SELECT id, name FROM item WHERE id < 0", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, &rows,
                       ERR));
    REQUIRE(rows->rows_len == 0 && rows->columns_len == 2 && rows->values == NULL);
    jk_sql_rows_free(rows);
    jk_sql_rows_free(NULL);

    /* Each consistency level sees the REPLICATION execute; NONE on every node, eventually. */
    exec1(client, "UPDATE item SET qty = qty + 10 WHERE name = 'pear'");
    const char *qty = "SELECT qty FROM item WHERE name = 'pear'";
    REQUIRE(scalar(client, qty, JK_QUERY_CONSISTENCY_STRICT) == 15);
    REQUIRE(scalar(client, qty, JK_QUERY_CONSISTENCY_SEQUENTIAL) == 15);
    for (int i = 0; i < 3; i++) {
        jk_client *one = NULL;
        CHECK(jk_client_connect(&addrs[i], 1, TC_CLUSTER_ID, &one, ERR));
        EVENTUALLY(scalar(one, qty, JK_QUERY_CONSISTENCY_NONE) == 15);
        jk_client_free(one);
    }

    /* Non-deterministic SQL is refused, naming the function; a query must not write and does
     * not know the leader's time. */
    jk_sql_statement rnd = {.sql = "UPDATE item SET qty = random()"};
    EXPECT_ERROR(JK_STATUS_REJECTED, "random() is refused", jk_sql_execute(client, &rnd, 1, &out, ERR));
    REQUIRE(scalar(client, qty, JK_QUERY_CONSISTENCY_STRICT) == 15);
    EXPECT_ERROR(JK_STATUS_REJECTED, "random() is refused",
                 jk_sql_query(client, "SELECT random()", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_REJECTED, "must not write",
                 jk_sql_query(client, "DELETE FROM item", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_REJECTED, ":jk_timestamp_ms",
                 jk_sql_query(client, "SELECT :jk_timestamp_ms", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_REJECTED, "no such table",
                 jk_sql_query(client, "SELECT * FROM missing", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));

    /* Argument checks: named, and nothing is sent. */
    jk_sql_statement one_stmt = {.sql = "DELETE FROM item"};
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "client", jk_sql_execute(NULL, &one_stmt, 1, &out, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "outcome_out", jk_sql_execute(client, &one_stmt, 1, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "statements", jk_sql_execute(client, NULL, 1, &out, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "1..=1024", jk_sql_execute(client, NULL, 0, &out, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "JK_SQL_MAX_STATEMENTS",
                 jk_sql_execute(client, &one_stmt, JK_SQL_MAX_STATEMENTS + 1, &out, ERR));
    jk_sql_statement no_sql[] = {one_stmt, {.sql = NULL}};
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "statements[1].sql", jk_sql_execute(client, no_sql, 2, &out, ERR));
    jk_sql_value bad_kind[] = {{.kind = 7}};
    jk_sql_statement bad = {.sql = "SELECT ?1", .params = bad_kind, .params_len = 1};
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "statements[0].params[0].kind 7", jk_sql_execute(client, &bad, 1, &out, ERR));
    jk_sql_value bad_text[] = {{.kind = JK_SQL_TYPE_TEXT, .data = (const uint8_t *)"\xff", .len = 1}};
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "params[0].data is not valid UTF-8",
                 jk_sql_query(client, "SELECT ?1", bad_text, 1, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "params",
                 jk_sql_query(client, "SELECT ?1", NULL, 1, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "JK_SQL_MAX_PARAMS",
                 jk_sql_query(client, "SELECT 1", echo, JK_SQL_MAX_PARAMS + 1, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_INVALID_ARGUMENT, "consistency", jk_sql_query(client, "SELECT 1", NULL, 0, 9, &rows, ERR));
    EXPECT_ERROR(JK_STATUS_NULL_ARGUMENT, "rows_out",
                 jk_sql_query(client, "SELECT 1", NULL, 0, JK_QUERY_CONSISTENCY_STRICT, NULL, ERR));
    EXPECT_ERROR(JK_STATUS_REJECTED, "the statement has 2 parameters but 1 were given",
                 jk_sql_query(client, "SELECT ?1, ?2", echo, 1, JK_QUERY_CONSISTENCY_STRICT, &rows, ERR));
    REQUIRE(count_at(client, JK_QUERY_CONSISTENCY_STRICT) == 3);

    jk_client_free(client);
    tc_cluster_stop(&c);
    printf("sql_test: ok\n");
    return 0;
}
