/* Links against libjournalkeeper and checks jk_version() against the version passed in by make
 * (read from Cargo.toml). */
#include <stdio.h>
#include <string.h>

#include "journalkeeper.h"

int main(void) {
    const char *v = jk_version();
    if (v == NULL || strcmp(v, EXPECTED_VERSION) != 0) {
        fprintf(stderr, "jk_version() = %s, expected %s\n", v ? v : "(null)", EXPECTED_VERSION);
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
