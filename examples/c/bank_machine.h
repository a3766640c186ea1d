/* A bank as a C state machine for jk_server_start_with_machines (the text protocol every
 * language's bank speaks): commands `deposit A N` (returns A's new balance) and
 * `transfer A B N` (refused with JK_STATUS_REJECTED and "A has X, short of N" when A has less
 * than N; returns A's new balance); queries `balance A` (0 when absent) and `balances` (lines
 * `A=N\n`, sorted by name). Snapshot: the `A N\n` lines. Bounded: at most BANK_MAX_ACCOUNTS
 * accounts with names of at most BANK_MAX_NAME bytes; commands and queries of at most
 * BANK_MAX_LINE bytes. Deterministic: the state is a function of the commands applied.
 * Include after the standard headers and journalkeeper.h; every function is static. */
#ifndef JK_BANK_MACHINE_H
#define JK_BANK_MACHINE_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journalkeeper.h"

#define BANK_MAX_ACCOUNTS 64
#define BANK_MAX_NAME 31
#define BANK_MAX_LINE 255

typedef struct {
    char name[BANK_MAX_NAME + 1];
    int64_t balance;
} bank_account;

typedef struct {
    /* Kept sorted by name. */
    bank_account accounts[BANK_MAX_ACCOUNTS];
    int len;
    /* Set (by a test) to make every later apply return JK_STATUS_IO: a crash. */
    atomic_int crash;
    /* Incremented by bank_free (owned by the program, outlives the bank). */
    atomic_int *frees;
} bank;

static bank_account *bank_find(bank *b, const char *name, int create) {
    int i = 0;
    while (i < b->len && strcmp(b->accounts[i].name, name) < 0) {
        i++;
    }
    if (i < b->len && strcmp(b->accounts[i].name, name) == 0) {
        return &b->accounts[i];
    }
    if (!create || b->len == BANK_MAX_ACCOUNTS) {
        return NULL;
    }
    memmove(&b->accounts[i + 1], &b->accounts[i], (size_t)(b->len - i) * sizeof b->accounts[0]);
    b->len++;
    snprintf(b->accounts[i].name, sizeof b->accounts[i].name, "%s", name);
    b->accounts[i].balance = 0;
    return &b->accounts[i];
}

static uint32_t bank_answer(jk_sm_output *out, uint32_t status, const char *text) {
    jk_sm_output_set(out, (const uint8_t *)text, strlen(text));
    return status;
}

/* Copies `len` bytes into `line` as a string; 0 when too long. */
static int bank_line(char *line, const uint8_t *data, size_t len) {
    if (len > BANK_MAX_LINE) {
        return 0;
    }
    memcpy(line, data, len);
    line[len] = '\0';
    return 1;
}

static uint32_t bank_apply(void *user_data, const jk_apply_context *ctx, const uint8_t *command,
                           size_t len, jk_sm_output *out) {
    (void)ctx;
    bank *b = user_data;
    if (atomic_load(&b->crash)) {
        return JK_STATUS_IO;
    }
    char line[BANK_MAX_LINE + 1], a[BANK_MAX_NAME + 1], c[BANK_MAX_NAME + 1], text[128];
    long long n;
    int end = 0;
    if (!bank_line(line, command, len)) {
        return bank_answer(out, JK_STATUS_REJECTED, "command too long");
    }
    if (strncmp(line, "deposit ", 8) == 0 && sscanf(line, "deposit %31s %lld%n", a, &n, &end) == 2 && line[end] == '\0' && n >= 0) {
        bank_account *acc = bank_find(b, a, 1);
        if (acc == NULL) {
            return bank_answer(out, JK_STATUS_REJECTED, "too many accounts");
        }
        acc->balance += n;
        snprintf(text, sizeof text, "%" PRId64, acc->balance);
        return bank_answer(out, JK_STATUS_OK, text);
    }
    if (strncmp(line, "transfer ", 9) == 0 && sscanf(line, "transfer %31s %31s %lld%n", a, c, &n, &end) == 3 && line[end] == '\0' &&
        n >= 0) {
        bank_account *from = bank_find(b, a, 0);
        int64_t has = from ? from->balance : 0;
        if (has < n) {
            snprintf(text, sizeof text, "%s has %" PRId64 ", short of %lld", a, has, n);
            return bank_answer(out, JK_STATUS_REJECTED, text);
        }
        if (bank_find(b, c, 1) == NULL) {
            return bank_answer(out, JK_STATUS_REJECTED, "too many accounts");
        }
        /* Found again: creating `c` may have moved `a`. */
        from = bank_find(b, a, 0);
        from->balance -= n;
        bank_find(b, c, 0)->balance += n;
        snprintf(text, sizeof text, "%" PRId64, from->balance);
        return bank_answer(out, JK_STATUS_OK, text);
    }
    return bank_answer(out, JK_STATUS_REJECTED, "unknown command");
}

static uint32_t bank_query(void *user_data, const uint8_t *query, size_t len, jk_sm_output *out) {
    bank *b = user_data;
    char line[BANK_MAX_LINE + 1], a[BANK_MAX_NAME + 1];
    int end = 0;
    if (!bank_line(line, query, len)) {
        return bank_answer(out, JK_STATUS_REJECTED, "query too long");
    }
    if (strncmp(line, "balance ", 8) == 0 && sscanf(line, "balance %31s%n", a, &end) == 1 &&
        line[end] == '\0') {
        char text[32];
        bank_account *acc = bank_find(b, a, 0);
        snprintf(text, sizeof text, "%" PRId64, acc ? acc->balance : 0);
        return bank_answer(out, JK_STATUS_OK, text);
    }
    if (strcmp(line, "balances") == 0) {
        char text[BANK_MAX_ACCOUNTS * (BANK_MAX_NAME + 24)];
        size_t used = 0;
        text[0] = '\0';
        for (int i = 0; i < b->len; i++) {
            used += (size_t)snprintf(text + used, sizeof text - used, "%s=%" PRId64 "\n",
                                     b->accounts[i].name, b->accounts[i].balance);
        }
        return bank_answer(out, JK_STATUS_OK, text);
    }
    return bank_answer(out, JK_STATUS_REJECTED, "unknown query");
}

static uint32_t bank_snapshot(void *user_data, jk_sm_writer *writer) {
    bank *b = user_data;
    for (int i = 0; i < b->len; i++) {
        char text[BANK_MAX_NAME + 24];
        int n = snprintf(text, sizeof text, "%s %" PRId64 "\n", b->accounts[i].name,
                         b->accounts[i].balance);
        jk_status st = jk_sm_writer_write(writer, (const uint8_t *)text, (size_t)n);
        if (st != JK_STATUS_OK) {
            return st;
        }
    }
    return JK_STATUS_OK;
}

static uint32_t bank_restore(void *user_data, jk_sm_reader *reader) {
    bank *b = user_data;
    char text[BANK_MAX_ACCOUNTS * (BANK_MAX_NAME + 24) + 1];
    size_t used = 0;
    for (;;) {
        size_t n = 0;
        if (used == sizeof text - 1) {
            return JK_STATUS_CORRUPTION;
        }
        jk_status st = jk_sm_reader_read(reader, (uint8_t *)text + used, sizeof text - 1 - used, &n);
        if (st != JK_STATUS_OK) {
            return st;
        }
        if (n == 0) {
            break;
        }
        used += n;
    }
    text[used] = '\0';
    b->len = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        char a[BANK_MAX_NAME + 1];
        long long n;
        bank_account *acc;
        if (sscanf(l, "%31s %lld", a, &n) != 2 || (acc = bank_find(b, a, 1)) == NULL) {
            return JK_STATUS_CORRUPTION;
        }
        acc->balance = n;
    }
    return JK_STATUS_OK;
}

static void bank_free(void *user_data) {
    bank *b = user_data;
    if (b->frees != NULL) {
        atomic_fetch_add(b->frees, 1);
    }
    free(b);
}

/* A new bank machine named `name` (freed by the library through bank_free); `frees` (may be
 * NULL) counts the frees. */
static jk_state_machine bank_machine(const char *name, atomic_int *frees) {
    bank *b = calloc(1, sizeof *b);
    if (b == NULL) {
        perror("calloc");
        exit(1);
    }
    b->frees = frees;
    return (jk_state_machine){
        .name = name,
        .user_data = b,
        .apply = bank_apply,
        .query = bank_query,
        .snapshot_write = bank_snapshot,
        .restore_read = bank_restore,
        .free = bank_free,
    };
}

#endif
