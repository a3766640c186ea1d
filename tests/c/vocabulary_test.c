/* One vocabulary: the one role enum and the names of roles and levels are the core's (the same
 * lists are asserted by the Python, Node and CLI tests); the standings are named as in Python
 * and Node. */
#include <stdio.h>
#include <string.h>

#include "journalkeeper.h"

static int passed, failed;

static void expect_name(const char *what, const char *got, const char *want) {
    int ok = (got == NULL && want == NULL) || (got != NULL && want != NULL && strcmp(got, want) == 0);
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: got %s, expected %s\n", what, got ? got : "(null)", want ? want : "(null)");
    }
}

int main(void) {
    expect_name("JK_ROLE_NONE", jk_role_name(JK_ROLE_NONE), NULL);
    expect_name("JK_ROLE_LEADER", jk_role_name(JK_ROLE_LEADER), "LEADER");
    expect_name("JK_ROLE_FOLLOWER", jk_role_name(JK_ROLE_FOLLOWER), "FOLLOWER");
    expect_name("JK_ROLE_PRE_CANDIDATE", jk_role_name(JK_ROLE_PRE_CANDIDATE), "PRE_CANDIDATE");
    expect_name("JK_ROLE_CANDIDATE", jk_role_name(JK_ROLE_CANDIDATE), "CANDIDATE");
    expect_name("JK_ROLE_OBSERVER", jk_role_name(JK_ROLE_OBSERVER), "OBSERVER");
    expect_name("role 99", jk_role_name(99), NULL);

    expect_name("ONE_WAY", jk_response_config_name(JK_RESPONSE_CONFIG_ONE_WAY), "ONE_WAY");
    expect_name("RECEIVE", jk_response_config_name(JK_RESPONSE_CONFIG_RECEIVE), "RECEIVE");
    expect_name("PERSISTENCE", jk_response_config_name(JK_RESPONSE_CONFIG_PERSISTENCE), "PERSISTENCE");
    expect_name("REPLICATION", jk_response_config_name(JK_RESPONSE_CONFIG_REPLICATION), "REPLICATION");
    expect_name("ALL", jk_response_config_name(JK_RESPONSE_CONFIG_ALL), "ALL");
    expect_name("response 5", jk_response_config_name(5), NULL);

    expect_name("STRICT", jk_query_consistency_name(JK_QUERY_CONSISTENCY_STRICT), "STRICT");
    expect_name("SEQUENTIAL", jk_query_consistency_name(JK_QUERY_CONSISTENCY_SEQUENTIAL), "SEQUENTIAL");
    expect_name("NONE", jk_query_consistency_name(JK_QUERY_CONSISTENCY_NONE), "NONE");
    expect_name("consistency 3", jk_query_consistency_name(3), NULL);

    expect_name("JK_STANDING_JOINING", jk_standing_name(JK_STANDING_JOINING), "JOINING");
    expect_name("JK_STANDING_MEMBER", jk_standing_name(JK_STANDING_MEMBER), "MEMBER");
    expect_name("JK_STANDING_REMOVED", jk_standing_name(JK_STANDING_REMOVED), "REMOVED");
    expect_name("JK_STANDING_OBSERVER", jk_standing_name(JK_STANDING_OBSERVER), "OBSERVER");
    expect_name("standing 4", jk_standing_name(4), NULL);

    /* The bounds the header states. */
    expect_name("JK_MAX_* bounds",
                JK_MAX_APPEND_ENTRIES == 4096 && JK_MAX_ENTRY_BYTES == 4194304 &&
                        JK_MAX_APPEND_BYTES == 8388608 && JK_MAX_GET_ENTRIES == 4096 &&
                        JK_MAX_PARTITIONS == 4096 && JK_MAX_KEY_BYTES == 4096 &&
                        JK_MAX_VALUE_BYTES == 1048576 && JK_MAX_VOTERS == 64 &&
                        JK_MAX_ADMIN_TIMEOUT_MS == 600000
                    ? "ok"
                    : "different",
                "ok");

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
