/* Cross-language state machines, C host: one process running an embedded node per TOML file
 * given, every node hosting one machine written in C —
 *   bank     the bank of examples/c/bank_machine.h (the text protocol every binding's bank
 *            speaks), named "bank";
 *   counter  a counter named "counter": command `add N` (→ the new value, decimal), any query
 *            (→ the value), snapshot = the value in decimal (what `make bench-machines` drives).
 * Once node 1 knows a leader it prints `ready` (one line) and then waits until its stdin
 * closes; it then stops every node and exits 0. Any failure: a message on stderr, exit 1.
 *
 *   sm_host bank|counter <node.toml>...   (driven by test_state_machines.py, bench_machines.py)
 */
#define _GNU_SOURCE
#include <stdbool.h>

#include "bank_machine.h"

#define MAX_NODES 7
#define WAIT_MS 60000

static void check(jk_status st, jk_error *err, const char *what) {
    if (st != JK_STATUS_OK) {
        fprintf(stderr, "sm_host: %s failed: %s: %s\n", what, jk_status_code(st), err ? jk_error_message(err) : "");
        exit(1);
    }
}

typedef struct {
    int64_t value;
} counter;

static uint32_t counter_answer(jk_sm_output *out, int64_t value) {
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRId64, value);
    jk_sm_output_set(out, (const uint8_t *)text, (size_t)n);
    return JK_STATUS_OK;
}

static uint32_t counter_apply(void *user_data, const jk_apply_context *ctx, const uint8_t *command, size_t len,
                              jk_sm_output *out) {
    (void)ctx;
    counter *c = user_data;
    char line[32];
    long long n;
    int end = 0;
    if (len >= sizeof line) {
        return bank_answer(out, JK_STATUS_REJECTED, "command too long");
    }
    memcpy(line, command, len);
    line[len] = '\0';
    if (sscanf(line, "add %lld%n", &n, &end) != 1 || line[end] != '\0') {
        return bank_answer(out, JK_STATUS_REJECTED, "unknown command");
    }
    c->value += n;
    return counter_answer(out, c->value);
}

static uint32_t counter_query(void *user_data, const uint8_t *query, size_t len, jk_sm_output *out) {
    (void)query;
    (void)len;
    return counter_answer(out, ((counter *)user_data)->value);
}

static uint32_t counter_snapshot(void *user_data, jk_sm_writer *writer) {
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRId64, ((counter *)user_data)->value);
    return jk_sm_writer_write(writer, (const uint8_t *)text, (size_t)n);
}

static uint32_t counter_restore(void *user_data, jk_sm_reader *reader) {
    char text[32];
    size_t used = 0;
    for (;;) {
        size_t n = 0;
        jk_status st = jk_sm_reader_read(reader, (uint8_t *)text + used, sizeof text - 1 - used, &n);
        if (st != JK_STATUS_OK) {
            return st;
        }
        if (n == 0) {
            break;
        }
        used += n;
        if (used == sizeof text - 1) {
            return JK_STATUS_CORRUPTION;
        }
    }
    text[used] = '\0';
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (used == 0 || *end != '\0') {
        return JK_STATUS_CORRUPTION;
    }
    ((counter *)user_data)->value = v;
    return JK_STATUS_OK;
}

static void counter_free(void *user_data) { free(user_data); }

static jk_state_machine counter_machine(void) {
    counter *c = calloc(1, sizeof *c);
    if (c == NULL) {
        perror("calloc");
        exit(1);
    }
    return (jk_state_machine){
        .name = "counter",
        .user_data = c,
        .apply = counter_apply,
        .query = counter_query,
        .snapshot_write = counter_snapshot,
        .restore_read = counter_restore,
        .free = counter_free,
    };
}

/* The whole file as a string (for jk_server_start_toml_with_machines); the caller frees it. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        fwrite(buf, 1, n, mem);
    }
    if (ferror(f) || fclose(mem) != 0) {
        fprintf(stderr, "sm_host: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    return text;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc - 2 > MAX_NODES || (strcmp(argv[1], "bank") != 0 && strcmp(argv[1], "counter") != 0)) {
        fprintf(stderr, "usage: sm_host bank|counter <node.toml>...\n");
        return 2;
    }
    bool is_bank = strcmp(argv[1], "bank") == 0;
    int nodes = argc - 2;
    jk_server *servers[MAX_NODES];
    jk_error *err = NULL;
    for (int i = 0; i < nodes; i++) {
        char *toml = read_file(argv[i + 2]);
        jk_state_machine m = is_bank ? bank_machine("bank", NULL) : counter_machine();
        check(jk_server_start_toml_with_machines(toml, &m, 1, &servers[i], &err), err, argv[i + 2]);
        free(toml);
    }
    check(jk_server_wait_for_leader(servers[0], WAIT_MS, NULL, &err), err, "jk_server_wait_for_leader");
    printf("ready\n");
    fflush(stdout);
    /* Serve until the driver closes our stdin (or dies). */
    char buf[256];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    for (int i = 0; i < nodes; i++) {
        check(jk_server_stop(servers[i], &err), err, "jk_server_stop");
        jk_server_free(servers[i]);
    }
    return 0;
}
