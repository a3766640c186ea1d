/* Error paths of the C ABI: NULL handles and out-pointers, bad sizes and enum values, reading
 * past the end (JK_STATUS_INDEX_OVERFLOW), calls on a closed client (JK_STATUS_CLOSED), a
 * stopped server, unreachable clusters, and NULL accepted by every free / close. Runs a
 * one-node embedded server on a free loopback port. Prints "N passed, N failed". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journalkeeper.h"

static int passed, failed;

/* Checks that `call` returns `want`; when it fails with an error object, checks that the
 * object agrees with the status, then frees it. */
#define EXPECT(want, call)                                                                     \
    do {                                                                                       \
        jk_error *err_ = NULL;                                                                 \
        jk_error **errp_ = &err_;                                                              \
        (void)errp_;                                                                           \
        jk_status got_ = (call);                                                               \
        int ok_ = got_ == (want);                                                              \
        if (got_ != JK_STATUS_OK && err_ != NULL) {                                            \
            ok_ = ok_ && jk_error_status(err_) == got_ &&                                      \
                  strcmp(jk_error_code(err_), jk_status_code(got_)) == 0 &&                    \
                  jk_error_message(err_) != NULL;                                              \
        }                                                                                      \
        if (ok_) {                                                                             \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s returned %s (%s), expected %s\n", __FILE__,        \
                    __LINE__, #call, jk_status_code(got_),                                     \
                    err_ ? jk_error_message(err_) : "no error object", jk_status_code(want));  \
        }                                                                                      \
        jk_error_free(err_);                                                                   \
    } while (0)

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                    \
        }                                                                                      \
    } while (0)

/* The error object's message names the bad argument. */
static void expect_message_names(jk_status want, jk_status got, jk_error *err, const char *name) {
    CHECK(got == want);
    CHECK(err != NULL && strstr(jk_error_message(err), name) != NULL);
    jk_error_free(err);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    jk_status status;
    int saw_event_after_end;
} outcome;

static void on_append(void *user_data, jk_status status, uint64_t first_index, const jk_error *error) {
    outcome *o = user_data;
    pthread_mutex_lock(&o->mu);
    o->calls++;
    o->status = status;
    (void)first_index;
    if (status != JK_STATUS_OK && (error == NULL || jk_error_status(error) != status)) {
        o->status = JK_STATUS_INTERNAL;
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static void on_watch(void *user_data, const jk_kv_event *event, const jk_error *error) {
    outcome *o = user_data;
    pthread_mutex_lock(&o->mu);
    if (o->calls > 0) {
        o->saw_event_after_end = 1;
    }
    if (event == NULL) {
        o->calls++;
        o->status = error ? jk_error_status(error) : JK_STATUS_INTERNAL;
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* A watch whose callback makes a blocking call and then closes its own watch. */
typedef struct {
    pthread_mutex_t mu;
    jk_client *client;
    jk_watch *watch;
    int events;
    int got_value;
} self_closing;

static void on_watch_self_close(void *user_data, const jk_kv_event *event, const jk_error *error) {
    self_closing *s = user_data;
    (void)error;
    jk_buffer *value = NULL;
    if (event != NULL && jk_kv_get(s->client, "self/k", JK_QUERY_CONSISTENCY_STRICT, &value, NULL) == JK_STATUS_OK &&
        value != NULL) {
        jk_buffer_free(value);
        pthread_mutex_lock(&s->mu);
        s->got_value = 1;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    s->events++;
    jk_watch *w = s->watch;
    s->watch = NULL;
    pthread_mutex_unlock(&s->mu);
    jk_watch_close(w);
}

/* Waits (up to 20 s) until the outcome has a call. */
static int wait_call(outcome *o) {
    int ok;
    pthread_mutex_lock(&o->mu);
    for (int i = 0; i < 2000 && o->calls == 0; i++) {
        pthread_mutex_unlock(&o->mu);
        usleep(10000);
        pthread_mutex_lock(&o->mu);
    }
    ok = o->calls == 1;
    pthread_mutex_unlock(&o->mu);
    return ok;
}

int main(void) {
    /* --- no server needed ----------------------------------------------------------------- */
    jk_error *err = NULL;
    jk_client *none = NULL;
    uint64_t index = 0;
    jk_entries *entries = NULL;
    jk_buffer *buf = NULL;
    bool flag = false;
    jk_bytes one = {(const uint8_t *)"x", 1};

    jk_status st = jk_journal_append(NULL, 0, &one, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, &err);
    expect_message_names(JK_STATUS_NULL_ARGUMENT, st, err, "client");
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_journal_get(NULL, 0, 0, 1, JK_QUERY_CONSISTENCY_STRICT, &entries, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_kv_get(NULL, "k", JK_QUERY_CONSISTENCY_STRICT, &buf, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_kv_exists(NULL, "k", JK_QUERY_CONSISTENCY_STRICT, &flag, NULL));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_client_close(NULL));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_status(NULL, &(jk_server_info){0}, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_start(NULL, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_client_connect(NULL, 1, 42, &none, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_kv_watch(NULL, "k", false, 0, on_watch, NULL, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_standing(NULL, &(jk_server_standing_info){0}, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_wait_for_removed(NULL, 0, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_start_joining(NULL, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_admin_add_voter(NULL, 4, "127.0.0.1:1", 0, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_admin_update_voters(NULL, NULL, 0, NULL, 0, 0, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_admin_transfer_leader(NULL, 1, 0, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_admin_set_preferred_leader(NULL, 0, errp_));

    /* Every free / close accepts NULL. */
    jk_error_free(NULL);
    jk_buffer_free(NULL);
    jk_string_free(NULL);
    jk_entries_free(NULL);
    jk_indices_free(NULL);
    jk_partitions_free(NULL);
    jk_kv_entries_free(NULL);
    jk_node_status_free(NULL);
    jk_cluster_configuration_free(NULL);
    jk_client_free(NULL);
    jk_server_free(NULL);
    EXPECT(JK_STATUS_OK, jk_watch_close(NULL));

    /* Accessors on a NULL error, and unknown status values. */
    CHECK(jk_error_status(NULL) == JK_STATUS_NULL_ARGUMENT);
    CHECK(jk_error_message(NULL) == NULL);
    CHECK(jk_error_leader_hint(NULL) == NULL);
    CHECK(strcmp(jk_error_code(NULL), "NULL_ARGUMENT") == 0);
    CHECK(strcmp(jk_status_code(JK_STATUS_INDEX_OVERFLOW), "INDEX_OVERFLOW") == 0);
    CHECK(strcmp(jk_status_code(12345), "UNKNOWN") == 0);

    /* Bad addresses and configurations. */
    const char *bad_addr[] = {"no-port"};
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_client_connect(bad_addr, 1, 42, &none, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_client_connect(bad_addr, 0, 42, &none, errp_));
    const char *null_addr[] = {NULL};
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_client_connect(null_addr, 1, 42, &none, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_server_start_toml("node_id = ", &(jk_server *){NULL}, errp_));
    jk_server_config zero = {0};
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_start(&zero, &(jk_server *){NULL}, errp_));

    /* --- a one-node server ----------------------------------------------------------------- */
    char dir[] = "/tmp/jk-error-test-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    jk_server_config cfg = {
        .node_id = 1, .listen = "127.0.0.1:0", .cluster_id = 42, .data_dir = dir};
    jk_server *server = NULL;
    EXPECT(JK_STATUS_OK, jk_server_start(&cfg, &server, errp_));
    if (server == NULL) {
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    char *addr = NULL;
    EXPECT(JK_STATUS_OK, jk_server_local_addr(server, &addr, errp_));
    EXPECT(JK_STATUS_OK, jk_server_wait_for_leader(server, 20000, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_server_standing(server, NULL, errp_));

    /* A second node on the same port fails with an error, not a crash. */
    jk_server_config clash = {.node_id = 1, .listen = addr, .cluster_id = 42, .data_dir = dir};
    jk_server *other = NULL;
    st = jk_server_start(&clash, &other, &err);
    CHECK(st != JK_STATUS_OK && other == NULL && err != NULL);
    jk_error_free(err);

    jk_client *client = NULL;
    const char *addrs[] = {addr};
    EXPECT(JK_STATUS_OK, jk_client_connect(addrs, 1, 42, &client, errp_));

    /* Another cluster's id: JK_STATUS_WRONG_CLUSTER at once, not UNAVAILABLE after 30 s. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    jk_client *wrong = NULL;
    st = jk_client_connect(addrs, 1, 43, &wrong, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(st == JK_STATUS_WRONG_CLUSTER && wrong == NULL);
    CHECK(err != NULL && strcmp(jk_error_code(err), "WRONG_CLUSTER") == 0);
    CHECK(strcmp(jk_status_code(JK_STATUS_WRONG_CLUSTER), "WRONG_CLUSTER") == 0);
    CHECK((t1.tv_sec - t0.tv_sec) < 5);
    jk_error_free(err);
    err = NULL;

    /* Only a request timeout (smaller than the default attempt timeout): the attempt timeout
     * follows it, as "0 takes the default" promises. */
    jk_client_config short_calls = {.cluster_id = 42, .request_timeout_ms = 1500};
    jk_client *quick = NULL;
    EXPECT(JK_STATUS_OK, jk_client_connect_with(addrs, 1, &short_calls, &quick, errp_));
    EXPECT(JK_STATUS_OK, jk_journal_append(quick, 0, &one, 1, JK_RESPONSE_CONFIG_REPLICATION, NULL, errp_));
    jk_client_free(quick);
    /* An explicit attempt timeout above the request timeout is still refused, naming it. */
    jk_client_config bad_attempt = {.cluster_id = 42, .request_timeout_ms = 1500, .attempt_timeout_ms = 5000};
    st = jk_client_connect_with(addrs, 1, &bad_attempt, &quick, &err);
    expect_message_names(JK_STATUS_INVALID_ARGUMENT, st, err, "attempt_timeout");

    /* Bad sizes, NULL data, bad enums, NULL out-pointers. */
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_append(client, 0, &one, 0, JK_RESPONSE_CONFIG_REPLICATION, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_journal_append(client, 0, NULL, 3, JK_RESPONSE_CONFIG_REPLICATION, NULL, errp_));
    jk_bytes null_data = {NULL, 5};
    st = jk_journal_append(client, 0, &null_data, 1, JK_RESPONSE_CONFIG_REPLICATION, NULL, &err);
    expect_message_names(JK_STATUS_NULL_ARGUMENT, st, err, "entries[0]");
    jk_bytes huge = {(const uint8_t *)"x", (size_t)-1};
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_append(client, 0, &huge, 1, JK_RESPONSE_CONFIG_REPLICATION, NULL, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_append(client, 0, &one, 1, 99, NULL, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_get(client, 0, 0, 0, JK_QUERY_CONSISTENCY_STRICT, &entries, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_get(client, 0, 0, 1, 7, &entries, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_journal_get(client, 0, 0, 1, JK_QUERY_CONSISTENCY_STRICT, NULL, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_kv_set(client, "", one, NULL, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_kv_set(client, "\xff\xfe", one, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_kv_set(client, NULL, one, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_kv_cas(client, "k", NULL, &one, NULL, NULL, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_journal_append_async(client, 0, &one, 1, JK_RESPONSE_CONFIG_REPLICATION, NULL, NULL, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_journal_scale_partitions(client, NULL, 0, errp_));
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_admin_status(client, "nowhere", &(jk_node_status *){NULL}, errp_));

    /* Reading past the end. */
    EXPECT(JK_STATUS_OK, jk_journal_append(client, 0, &one, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, errp_));
    EXPECT(JK_STATUS_INDEX_OVERFLOW, jk_journal_get(client, 0, index + 1, 10, JK_QUERY_CONSISTENCY_STRICT, &entries, errp_));
    /* query_index past the last entry's time: the last entry (the first sharing its time),
     * never the end index; JK_NO_INDEX only for an empty partition. */
    uint64_t found = 0;
    EXPECT(JK_STATUS_OK, jk_journal_query_index(client, 0, UINT64_MAX, JK_QUERY_CONSISTENCY_STRICT, &found, errp_));
    CHECK(found != JK_NO_INDEX && found <= index);
    EXPECT(JK_STATUS_INDEX_OVERFLOW, jk_journal_get(client, 0, index + 1000, 10, JK_QUERY_CONSISTENCY_SEQUENTIAL, &entries, errp_));
    EXPECT(JK_STATUS_OK, jk_journal_get(client, 0, index, 10, JK_QUERY_CONSISTENCY_STRICT, &entries, errp_));
    CHECK(entries != NULL && entries->len == 1 && entries->entries[0].payload_len == 1);
    jk_entries_free(entries);
    entries = NULL;

    /* Absent keys are NULL buffers, not errors. */
    buf = (jk_buffer *)&buf;
    EXPECT(JK_STATUS_OK, jk_kv_get(client, "absent", JK_QUERY_CONSISTENCY_STRICT, &buf, errp_));
    CHECK(buf == NULL);

    /* A watch and an async append on a client that is then closed. */
    outcome watched = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, JK_STATUS_OK, 0};
    jk_watch *watch = NULL;
    EXPECT(JK_STATUS_OK, jk_kv_watch(client, "", true, 0, on_watch, &watched, &watch, errp_));

    outcome appended = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, JK_STATUS_INTERNAL, 0};
    EXPECT(JK_STATUS_OK, jk_journal_append_async(client, 0, &one, 1, JK_RESPONSE_CONFIG_ALL, on_append, &appended, errp_));
    CHECK(wait_call(&appended) && appended.status == JK_STATUS_OK);

    /* A callback may make blocking calls and close its own watch; no call follows. */
    self_closing self = {PTHREAD_MUTEX_INITIALIZER, client, NULL, 0, 0};
    jk_watch *self_watch = NULL;
    EXPECT(JK_STATUS_OK, jk_kv_watch(client, "self/k", false, 0, on_watch_self_close, &self, &self_watch, errp_));
    pthread_mutex_lock(&self.mu);
    self.watch = self_watch;
    pthread_mutex_unlock(&self.mu);
    EXPECT(JK_STATUS_OK, jk_kv_set(client, "self/k", one, NULL, errp_));
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&self.mu);
        int n = self.events;
        pthread_mutex_unlock(&self.mu);
        if (n > 0) {
            break;
        }
        usleep(10000);
    }
    EXPECT(JK_STATUS_OK, jk_kv_set(client, "self/k", one, NULL, errp_));
    usleep(300000);
    pthread_mutex_lock(&self.mu);
    CHECK(self.events == 1 && self.got_value == 1 && self.watch == NULL);
    pthread_mutex_unlock(&self.mu);

    EXPECT(JK_STATUS_OK, jk_client_close(client));
    EXPECT(JK_STATUS_OK, jk_client_close(client)); /* idempotent */
    EXPECT(JK_STATUS_CLOSED, jk_journal_append(client, 0, &one, 1, JK_RESPONSE_CONFIG_REPLICATION, &index, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_journal_get(client, 0, 0, 1, JK_QUERY_CONSISTENCY_STRICT, &entries, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_kv_set(client, "k", one, NULL, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_kv_get(client, "k", JK_QUERY_CONSISTENCY_NONE, &buf, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_kv_watch(client, "k", false, 0, on_watch, NULL, &(jk_watch *){NULL}, errp_));

    outcome closed_append = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, JK_STATUS_OK, 0};
    EXPECT(JK_STATUS_OK, jk_journal_append_async(client, 0, &one, 1, JK_RESPONSE_CONFIG_ALL, on_append, &closed_append, errp_));
    CHECK(wait_call(&closed_append) && closed_append.status == JK_STATUS_CLOSED);

    CHECK(wait_call(&watched) && watched.status == JK_STATUS_CLOSED);
    EXPECT(JK_STATUS_OK, jk_watch_close(watch));
    CHECK(watched.saw_event_after_end == 0);
    jk_client_free(client);

    /* A client with short timeouts fails fast once its cluster is gone. */
    jk_client_config fast_cfg = {.cluster_id = 42, .request_timeout_ms = 1000, .attempt_timeout_ms = 500};
    jk_client *fast = NULL;
    EXPECT(JK_STATUS_OK, jk_client_connect_with(addrs, 1, &fast_cfg, &fast, errp_));

    /* Nobody listens on a stopped server's port. */
    EXPECT(JK_STATUS_OK, jk_server_stop(server, errp_));
    st = jk_kv_get(fast, "k", JK_QUERY_CONSISTENCY_STRICT, &buf, NULL);
    CHECK(st == JK_STATUS_TIMEOUT || st == JK_STATUS_UNAVAILABLE);
    jk_client_free(fast);
    EXPECT(JK_STATUS_OK, jk_server_stop(server, errp_)); /* idempotent */
    EXPECT(JK_STATUS_CLOSED, jk_server_status(server, &(jk_server_info){0}, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_server_standing(server, &(jk_server_standing_info){0}, errp_));
    EXPECT(JK_STATUS_CLOSED, jk_server_wait_for_removed(server, UINT64_MAX, errp_));
    EXPECT(JK_STATUS_UNAVAILABLE, jk_client_connect(addrs, 1, 42, &none, errp_));
    EXPECT(JK_STATUS_NULL_ARGUMENT, jk_client_connect_with(addrs, 1, NULL, &none, errp_));
    jk_client_config bad_timeouts = {.cluster_id = 42, .request_timeout_ms = 100, .attempt_timeout_ms = 200};
    EXPECT(JK_STATUS_INVALID_ARGUMENT, jk_client_connect_with(addrs, 1, &bad_timeouts, &none, errp_));
    jk_server_free(server);
    jk_string_free(addr);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
