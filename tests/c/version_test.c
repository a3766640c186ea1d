/* The header's version macros and jk_version() against the version make reads from Cargo.toml
 * (EXPECTED_VERSION), so a release that forgets to update either fails the tests. */
#include <stdio.h>
#include <string.h>

#include "journalkeeper.h"

static int passed, failed;

static void check(int ok, const char *what, const char *got) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: got %s, expected %s\n", what, got ? got : "(null)", EXPECTED_VERSION);
    }
}

int main(void) {
    const char *v = jk_version();
    check(v != NULL && strcmp(v, EXPECTED_VERSION) == 0, "jk_version()", v);
    check(strcmp(JK_VERSION_STRING, EXPECTED_VERSION) == 0, "JK_VERSION_STRING", JK_VERSION_STRING);

    char numbers[64];
    snprintf(numbers, sizeof numbers, "%d.%d.%d", JK_VERSION_MAJOR, JK_VERSION_MINOR, JK_VERSION_PATCH);
    check(strcmp(numbers, EXPECTED_VERSION) == 0, "JK_VERSION_MAJOR.MINOR.PATCH", numbers);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
