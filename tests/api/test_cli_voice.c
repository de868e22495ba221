/*
 * Voice cloning on the command line: `ctts export-voice` (the official
 * export format, within 1e-4 of the official file; the cache under
 * $XDG_CACHE_HOME/ctts/voices and --no-voice-cache), `ctts generate --voice
 * clip.wav`, and the bad inputs, each with its exit code and one-line
 * message. The binary comes from $CTTS_BIN (tests/run.sh sets it).
 */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "io/safetensors.h"

static char tmpdir[64];
static char err_text[1 << 16];

static const char *tiny(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/pocket-tiny/%s", test_golden_dir(), rel);
    return buf[k];
}

static const char *tmp(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_cli_voice_XXXXXX");
        if (!mkdtemp(tmpdir)) tmpdir[0] = 0;
    }
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Runs ctts (NULL-terminated arguments) with XDG_CACHE_HOME = xdg; returns the exit code. */
static int run_ctts(const char *xdg, const char *first, ...) {
    const char *argv[64];
    int n = 0;
    argv[n++] = test_ctts_bin();
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char errp[128];
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open("/dev/null", O_WRONLY);
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("XDG_CACHE_HOME", xdg, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FILE *f = fopen(errp, "rb");
    size_t k = f ? fread(err_text, 1, sizeof err_text - 1, f) : 0;
    err_text[k] = 0;
    if (f) fclose(f);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

#define CHECK_ONE_LINE_ERROR(rc, want_rc, needle)                                      \
    do {                                                                               \
        CHECK_EQ_INT(rc, want_rc);                                                     \
        CHECK(strncmp(err_text, "ctts: error: ", 13) == 0);                            \
        CHECK(strchr(err_text, '\n') == strrchr(err_text, '\n'));                      \
        CHECK_STR_CONTAINS(err_text, needle);                                          \
    } while (0)

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca, cb;
    while (same) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Max |a - b| over all tensors of two state files (same names and shapes), -1 if they differ in layout. */
static double state_file_diff(const char *a, const char *b) {
    char err[512];
    st_file *x = NULL, *y = NULL;
    double worst = -1;
    if (st_open(a, &x, err, sizeof err) == CTTS_OK && st_open(b, &y, err, sizeof err) == CTTS_OK &&
        st_count(x) == st_count(y)) {
        worst = 0;
        for (int i = 0; i < st_count(y) && worst >= 0; i++) {
            const ctts_tensor *ty = st_tensor(y, i), *tx = st_find(x, ty->name);
            if (!tx || tx->nbytes != ty->nbytes || tx->dtype != ty->dtype) {
                worst = -1;
                break;
            }
            if (ty->dtype != CTTS_DT_F32) {
                if (memcmp(tx->data, ty->data, ty->nbytes) != 0) worst = -1;
                continue;
            }
            for (size_t j = 0; j < ty->nbytes / 4; j++) {
                float u, v;
                memcpy(&u, (const char *)tx->data + 4 * j, 4);
                memcpy(&v, (const char *)ty->data + 4 * j, 4);
                double d = fabs((double)u - v);
                if (!(d <= worst)) worst = d;
            }
        }
    }
    st_close(x);
    st_close(y);
    return worst;
}

static void test_export_voice_and_cache(void) {
    const char *xdg = tmp("xdg");
    char xdgbuf[256], cachedir[300];
    snprintf(xdgbuf, sizeof xdgbuf, "%s", xdg);
    snprintf(cachedir, sizeof cachedir, "%s/ctts/voices", xdgbuf);
    int rc = run_ctts(xdgbuf, "export-voice", "--model", tiny("model"), "--audio",
                      tiny("voice/voice_22k.wav"), "--output", tmp("v1.safetensors"), "--quiet",
                      NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(err_text[0], 0);
    double d = state_file_diff(tmp("v1.safetensors"), tiny("voice/voice_22k_state.safetensors"));
    if (!(d >= 0 && d <= 1e-4)) TEST_FAIL_AT("exported state differs by %g", d);
    CHECK(exists(cachedir));
    /* Second export: from the cache, the same bytes. */
    rc = run_ctts(xdgbuf, "export-voice", "--model", tiny("model"), "--audio",
                  tiny("voice/voice_22k.wav"), "--output", tmp("v2.safetensors"), NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR_CONTAINS(err_text, "wrote voice");
    CHECK(files_equal(tmp("v1.safetensors"), tmp("v2.safetensors")));
    /* --no-voice-cache with a fresh XDG dir creates nothing there. */
    const char *xdg2 = tmp("xdg2");
    char xdg2buf[256];
    snprintf(xdg2buf, sizeof xdg2buf, "%s", xdg2);
    rc = run_ctts(xdg2buf, "export-voice", "--model", tiny("model"), "--audio",
                  tiny("voice/voice_24k.wav"), "--output", tmp("v3.safetensors"),
                  "--no-voice-cache", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(!exists(xdg2buf));
    d = state_file_diff(tmp("v3.safetensors"), tiny("voice/voice_24k_state.safetensors"));
    if (!(d >= 0 && d <= 1e-4)) TEST_FAIL_AT("exported 24k state differs by %g", d);
    /* generate --voice clip.wav, and the exported file as --voice: same audio. */
    rc = run_ctts(xdgbuf, "generate", "--model", tiny("model"), "--text", "Hello there.",
                  "--voice", tiny("voice/voice_24k.wav"), "--temperature", "0", "--max-frames",
                  "6", "--output", tmp("a.wav"), NULL);
    CHECK_EQ_INT(rc, 0);
    rc = run_ctts(xdgbuf, "generate", "--model", tiny("model"), "--text", "Hello there.",
                  "--voice", tmp("v3.safetensors"), "--temperature", "0", "--max-frames", "6",
                  "--output", tmp("b.wav"), NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(exists(tmp("a.wav")) && files_equal(tmp("a.wav"), tmp("b.wav")));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", xdgbuf, xdg2buf);
    CHECK(system(cmd) == 0);
    const char *names[] = {"v1.safetensors", "v2.safetensors", "v3.safetensors", "a.wav",
                           "b.wav"};
    for (int i = 0; i < 5; i++) remove(tmp(names[i]));
}

static void test_bad_inputs(void) {
    const char *x = "/nonexistent-ctts-xdg";
    FILE *f = fopen(tmp("text.wav"), "wb");
    REQUIRE(f);
    fputs("just words, no audio\n", f);
    fclose(f);
    f = fopen(tmp("empty.mp3"), "wb");
    REQUIRE(f);
    fclose(f);
    int rc = run_ctts(x, "export-voice", "--model", tiny("model"), "--output", tmp("o.st"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 2, "--audio");
    rc = run_ctts(x, "export-voice", "--model", tiny("model"), "--audio", tmp("text.wav"),
                  "--output", tmp("o.st"), "--no-voice-cache", NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "not a readable audio file");
    rc = run_ctts(x, "export-voice", "--model", tiny("model"), "--audio", tmp("empty.mp3"),
                  "--output", tmp("o.st"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "empty file");
    rc = run_ctts(x, "export-voice", "--model", tiny("model"), "--audio", tmp("missing.flac"),
                  "--output", tmp("o.st"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "missing.flac");
    rc = run_ctts(x, "generate", "--model", tiny("model"), "--text", "Hi.", "--voice",
                  tmp("text.wav"), "--output", tmp("o.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "text.wav: not a readable audio file");
    CHECK(!exists(tmp("o.st")) && !exists(tmp("o.wav")));
    remove(tmp("text.wav"));
    remove(tmp("empty.mp3"));
    remove(tmp("stderr"));
    if (tmpdir[0]) CHECK(rmdir(tmpdir) == 0);
}

TEST_MAIN(T(test_export_voice_and_cache), T(test_bad_inputs))
