// The pass/fail counting shared by the C test programs: check() records one
// condition, failures are printed with what was checked, and the program
// ends with report(), whose "N passed, M failed" line tests/kernels.test.mjs
// (and the other runners) read; its value is the exit status.
#ifndef SAM_TESTS_CHECK_H
#define SAM_TESTS_CHECK_H

#include <stdio.h>

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

static int report(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

#endif
