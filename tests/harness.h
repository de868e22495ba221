/*
 * Minimal test harness shared by every test program.
 *
 * A test program defines test functions, lists them in a table and calls
 * test_main(). Each test prints PASS / FAIL / SKIP; the program's last line is
 * "N passed, N failed, N skipped" and its exit code is non-zero on any FAIL.
 * tests/run.sh adds up the counts of all programs.
 */
#ifndef CTTS_TEST_HARNESS_H
#define CTTS_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_entry;

/* Per-test state, reset before each test. */
static int test_failed_;
static int test_skipped_;
static char test_skip_why_[256];

#define TEST_FAIL_AT(...)                                                     \
    do {                                                                      \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                  \
        fprintf(stderr, __VA_ARGS__);                                         \
        fprintf(stderr, "\n");                                                \
        test_failed_ = 1;                                                     \
    } while (0)

/* Non-fatal check: records the failure and continues. */
#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) TEST_FAIL_AT("CHECK failed: %s", #cond);                 \
    } while (0)

/* Fatal check: records the failure and returns from the test function. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            TEST_FAIL_AT("REQUIRE failed: %s", #cond);                        \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) TEST_FAIL_AT("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                       \
    do {                                                                      \
        const char *h_ = (hay), *n_ = (needle);                               \
        if (!h_ || !strstr(h_, n_))                                           \
            TEST_FAIL_AT("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                 \
    do {                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                            \
        if (!(fabs(a_ - b_) <= (tol)))                                        \
            TEST_FAIL_AT("%s = %g, %s = %g, |diff| %g > %g", #a, a_, #b, b_, fabs(a_ - b_), (double)(tol)); \
    } while (0)

/* Marks the current test skipped (e.g. an ISA the host lacks) and returns. */
#define SKIP(...)                                                             \
    do {                                                                      \
        snprintf(test_skip_why_, sizeof test_skip_why_, __VA_ARGS__);         \
        test_skipped_ = 1;                                                    \
        return;                                                               \
    } while (0)

/* Root of the shared golden data: $CTTS_GOLDEN or ../shared/golden. */
/* xorshift64: uniform in [-1, 1), the sequence fixed by *state (non-zero). */
static inline float test_frand(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((double)(*state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline const char *test_golden_dir(void) {
    const char *d = getenv("CTTS_GOLDEN");
    return d && *d ? d : "../shared/golden";
}

/* The ctts binary the CLI tests run ($CTTS_BIN, set by tests/run.sh). */
static inline const char *test_ctts_bin(void) {
    const char *b = getenv("CTTS_BIN");
    return b && *b ? b : "build/ctts";
}

/* A whole file, malloc'd with one spare byte (NULL if it cannot be read). */
static inline unsigned char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = len >= 0 ? malloc((size_t)len + 1) : NULL;
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

/* Runs tests whose name contains argv[1] (all when absent). */
static inline int test_main(int argc, char **argv, const test_entry *tests, int n) {
    int passed = 0, failed = 0, skipped = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < n; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        test_failed_ = 0;
        test_skipped_ = 0;
        tests[i].fn();
        if (test_failed_) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else if (test_skipped_) {
            printf("SKIP %s (%s)\n", tests[i].name, test_skip_why_);
            skipped++;
        } else {
            printf("PASS %s\n", tests[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                        \
    int main(int argc, char **argv) {                                         \
        static const test_entry tests_[] = {__VA_ARGS__};                     \
        return test_main(argc, argv, tests_, (int)(sizeof tests_ / sizeof tests_[0])); \
    }
#define T(fn) {#fn, fn}

#endif
