/*
 * `ctts stream`, driven as a user would ($CTTS_BIN, the golden tiny model):
 *  - raw s16 / f32 PCM on stdout equals the samples `ctts generate` writes;
 *  - --output writes a WAV identical to generate's (header fixed at the end);
 *  - --measure-first-chunk prints one "first_chunk_ms: <number>" line;
 *  - --text-file - reads stdin as it arrives: audio comes out before the rest
 *    of the text is written, and the result equals generate on the whole text;
 *  - bad options and inputs: one "ctts: error:" line, exit 1 or 2.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char tmpdir[64];
static char err_text[1 << 14];

static const char *tiny(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    char root[400];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(buf[k], sizeof buf[k], "%s/pocket-tiny/%s", root, rel);
    return buf[k];
}

static const char *tmp(const char *name) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Starts ctts with stdout/stderr to files and stdin from in_fd (-1: /dev/null). */
static pid_t spawn(int in_fd, const char *const *args) {
    const char *argv[64];
    int n = 0;
    argv[n++] = test_ctts_bin();
    for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(tmp("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(tmp("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        dup2(fo, 1);
        dup2(fe, 2);
        dup2(fi, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int finish(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    size_t n = 0;
    unsigned char *e = test_read_file(tmp("stderr"), &n);
    n = n < sizeof err_text - 1 ? n : sizeof err_text - 1;
    if (e) memcpy(err_text, e, n);
    err_text[n] = 0;
    free(e);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

static int run(const char *first, ...) {
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return finish(spawn(-1, args));
}

#define CHECK_ONE_LINE_ERROR(rc, want_rc, needle)                                      \
    do {                                                                               \
        CHECK_EQ_INT(rc, want_rc);                                                     \
        CHECK(strncmp(err_text, "ctts: error: ", 13) == 0);                            \
        CHECK_STR_CONTAINS(err_text, needle);                                          \
        const char *nl_ = strchr(err_text, '\n');                                      \
        CHECK(nl_ && nl_[1] == 0);                                                     \
    } while (0)

static const char *text =
    "Streaming from the command line. It writes audio while it works, and the result "
    "is the same as generate.";

/* generate's WAV of text (s16 or f32) into *wav; returns the data offset. */
static size_t reference_wav(const char *t, const char *fmt, unsigned char **wav, size_t *n) {
    int rc = run("generate", "--model", tiny("model"), "--voice",
                 tiny("voice/voice_22k_state.safetensors"), "--text", t, "--max-tokens", "12",
                 "--wav-format", fmt, "--output", tmp("ref.wav"), NULL);
    CHECK_EQ_INT(rc, 0);
    *wav = test_read_file(tmp("ref.wav"), n);
    return !strcmp(fmt, "f32") ? 58 : 44;
}

static void test_raw_pcm_equals_generate_(void);
static void test_raw_pcm_equals_generate_(void) {
    for (int f = 0; f < 2; f++) {
        const char *fmt = f ? "f32" : "s16";
        unsigned char *ref = NULL;
        size_t nref = 0;
        size_t hdr = reference_wav(text, fmt, &ref, &nref);
        REQUIRE(ref && nref > hdr);
        int rc = run("stream", "--model", tiny("model"), "--voice",
                     tiny("voice/voice_22k_state.safetensors"), "--text", text, "--max-tokens",
                     "12", "--format", fmt, NULL);
        CHECK_EQ_INT(rc, 0);
        size_t n = 0;
        unsigned char *raw = test_read_file(tmp("stdout"), &n);
        CHECK_EQ_INT(n, nref - hdr);
        if (raw && n == nref - hdr) CHECK(memcmp(raw, ref + hdr, n) == 0);
        free(raw);
        free(ref);
    }
}

static void test_wav_output_and_first_chunk_line_(void);
static void test_wav_output_and_first_chunk_line_(void) {
    unsigned char *ref = NULL;
    size_t nref = 0;
    reference_wav(text, "s16", &ref, &nref);
    REQUIRE(ref);
    int rc = run("stream", "--model", tiny("model"), "--voice",
                 tiny("voice/voice_22k_state.safetensors"), "--text", text, "--max-tokens", "12",
                 "--output", tmp("s.wav"), "--measure-first-chunk", "--pipeline", "on", NULL);
    CHECK_EQ_INT(rc, 0);
    size_t n = 0;
    unsigned char *wav = test_read_file(tmp("s.wav"), &n);
    CHECK_EQ_INT(n, nref);
    if (wav && n == nref) CHECK(memcmp(wav, ref, n) == 0); /* header sizes fixed too */
    const char *line = strstr(err_text, "first_chunk_ms: ");
    CHECK(line != NULL);
    if (line) {
        char *end;
        double ms = strtod(line + 16, &end);
        CHECK(end > line + 16 && *end == '\n' && ms > 0);
    }
    free(wav);
    free(ref);
}

/* stdin: write part1, wait for audio on stdout while stdin is still open,
 * then write part2: the raw PCM equals generate's WAV data of the whole text
 * (gen: the model and generation options, shared by both commands). */
static void stdin_as_it_arrives(const char *const *gen, const char *part1, const char *part2) {
    char whole[512];
    snprintf(whole, sizeof whole, "%s%s", part1, part2);
    const char *args[32];
    int n_args = 0;
    args[n_args++] = "generate";
    for (int i = 0; gen[i]; i++) args[n_args++] = gen[i];
    const char *tail[] = {"--text", whole, "--output", tmp("ref.wav"), NULL};
    for (int i = 0; i < 5; i++) args[n_args++] = tail[i];
    CHECK_EQ_INT(finish(spawn(-1, args)), 0);
    size_t nref = 0;
    unsigned char *ref = test_read_file(tmp("ref.wav"), &nref);
    REQUIRE(ref && nref > 44);
    n_args = 0;
    args[n_args++] = "stream";
    for (int i = 0; gen[i]; i++) args[n_args++] = gen[i];
    args[n_args++] = "--text-file";
    args[n_args++] = "-";
    args[n_args] = NULL;
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0); /* the child must not hold the write end */
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = spawn(fds[0], args);
    close(fds[0]);
    CHECK(write(fds[1], part1, strlen(part1)) == (ssize_t)strlen(part1));
    /* audio must appear while stdin is still open (bounded wait, not a timing check) */
    struct stat sb;
    int early = 0;
    for (int i = 0; i < 3000 && !early; i++) {
        if (stat(tmp("stdout"), &sb) == 0 && sb.st_size > 0) early = 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(early);
    CHECK(write(fds[1], part2, strlen(part2)) == (ssize_t)strlen(part2));
    close(fds[1]);
    CHECK_EQ_INT(finish(pid), 0);
    size_t n = 0;
    unsigned char *raw = test_read_file(tmp("stdout"), &n);
    CHECK_EQ_INT(n, nref - 44);
    if (raw && n == nref - 44) CHECK(memcmp(raw, ref + 44, n) == 0);
    free(raw);
    free(ref);
}

static void test_stdin_as_it_arrives_(void);
static void test_stdin_as_it_arrives_(void) {
    const char *gen[] = {"--model", tiny("model"), "--voice", tiny("voice/voice_22k_state.safetensors"),
                         "--max-tokens", "12", NULL};
    stdin_as_it_arrives(gen, "The first sentences arrive at once. They make a chunk of their own. ",
                        "The rest comes\nlater, line by line.\n");
}

/* Qwen3-TTS in the streaming text mode speaks from the first words on. */
static void test_stdin_qwen_(void);
static void test_stdin_qwen_(void) {
    char model[512], root[400];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(model, sizeof model, "%s/qwen3tts-tiny/model", root);
    const char *gen[] = {"--model", model, "--speaker", "ryan", "--text-mode", "streaming",
                         "--seed", "3", "--max-new-tokens", "80", NULL};
    stdin_as_it_arrives(gen, "The first words of a reply, as a language model writes ",
                        "them, and then the rest of it.\n");
}

static void test_bad_inputs_(void);
static void test_bad_inputs_(void) {
    int rc = run("stream", "--model", tiny("model"), "--text", "x", "--format", "s8", NULL);
    CHECK_ONE_LINE_ERROR(rc, 2, "--format");
    rc = run("stream", "--model", tiny("model"), "--text", "x", "--pipeline", "maybe", NULL);
    CHECK_ONE_LINE_ERROR(rc, 2, "--pipeline");
    rc = run("stream", "--model", tiny("model"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 2, "no text");
    rc = run("stream", "--model", tiny("model"), "--text", "x", "--text-file", "-", NULL);
    CHECK_ONE_LINE_ERROR(rc, 2, "not both");
    rc = run("stream", "--model", tiny("model"), "--text-file", tmp("missing.txt"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "missing.txt");
    rc = run("stream", "--model", tiny("model"), "--text", "   ", NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "empty");
    rc = run("stream", "--model", tiny("model"), "--text", "fine.", "--output",
             tmp("no/such/dir.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "dir.wav");
    /* empty stdin is an empty text */
    rc = run("stream", "--model", tiny("model"), "--text-file", "-", NULL);
    CHECK_ONE_LINE_ERROR(rc, 1, "empty");
    /* invalid UTF-8 on stdin; no partial WAV is left behind */
    FILE *f = fopen(tmp("bad.txt"), "wb");
    REQUIRE(f);
    fputs("Good start. \xff\xfe then bad bytes, and more words after them ", f);
    fclose(f);
    int fd = open(tmp("bad.txt"), O_RDONLY);
    const char *args[] = {"stream", "--model", tiny("model"), "--text-file", "-", "--output",
                          tmp("bad.wav"), NULL};
    rc = finish(spawn(fd, args));
    close(fd);
    CHECK_ONE_LINE_ERROR(rc, 1, "UTF-8");
    struct stat sb;
    CHECK(stat(tmp("bad.wav"), &sb) != 0);
}

static void cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", tmpdir);
}

/* Each test calls this first; the directory goes at exit. */
static void setup(void) {
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_cli_stream_XXXXXX");
    if (!mkdtemp(tmpdir)) perror("mkdtemp");
    atexit(cleanup);
}

static void test_stream_raw(void) {
    setup();
    test_raw_pcm_equals_generate_();
}
static void test_stream_wav(void) {
    setup();
    test_wav_output_and_first_chunk_line_();
}
static void test_stream_stdin(void) {
    setup();
    test_stdin_as_it_arrives_();
}
static void test_stream_stdin_qwen(void) {
    setup();
    test_stdin_qwen_();
}
static void test_stream_errors(void) {
    setup();
    test_bad_inputs_();
}

TEST_MAIN(T(test_stream_raw), T(test_stream_wav), T(test_stream_stdin), T(test_stream_stdin_qwen),
          T(test_stream_errors))
