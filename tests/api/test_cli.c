/*
 * The ctts command line, driven as a user would: the documented contract
 * (tokenize output, --opt=VALUE, texts starting with '-', WAV formats) and
 * every bad input of the Pocket engine issue, each checked for its exit code
 * and its one-line message. The binary comes from $CTTS_BIN (tests/run.sh
 * sets it; under `make check` it is the ASan+UBSan build).
 */
#include <fcntl.h>
#include <limits.h>
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
static char out_text[1 << 16], err_text[1 << 16];

static const char *tiny(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    char root[400];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(buf[k], sizeof buf[k], "%s/pocket-tiny/%s", root, rel);
    return buf[k];
}

static void read_all(const char *path, char *dst, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(dst, 1, cap - 1, f) : 0;
    dst[n] = 0;
    if (f) fclose(f);
}

/* Runs ctts with the given arguments (NULL-terminated); returns the exit code. */
static int run_ctts(const char *first, ...) {
    const char *argv[64];
    int n = 0;
    argv[n++] = test_ctts_bin();
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char outp[128], errp[128];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open("/dev/null", O_RDONLY);
        dup2(fo, 1);
        dup2(fe, 2);
        dup2(fi, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    read_all(outp, out_text, sizeof out_text);
    read_all(errp, err_text, sizeof err_text);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* One error line: starts with "ctts: error: ", one newline, no sanitizer report. */
#define CHECK_ONE_LINE_ERROR(rc, needle)                                               \
    do {                                                                               \
        CHECK_EQ_INT(rc, 1);                                                           \
        CHECK(strncmp(err_text, "ctts: error: ", 13) == 0);                            \
        CHECK(strchr(err_text, '\n') == err_text + strlen(err_text) - 1);              \
        CHECK_STR_CONTAINS(err_text, needle);                                          \
    } while (0)

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* A model dir whose config points at the golden tokenizer and at `weights`. */
static const char *model_dir(const char *name, const char *weights_file) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    char cfg_path[300], src[600];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    char yaml[4096];
    read_all(tiny("model/config.yaml"), yaml, sizeof yaml);
    /* Rewrite the two relative paths. */
    FILE *f = fopen(cfg_path, "w");
    char *line = strtok(yaml, "\n");
    while (line) {
        if (strncmp(line, "weights_path:", 13) == 0)
            fprintf(f, "weights_path: %s\n", weights_file);
        else if (strstr(line, "tokenizer_path:")) {
            snprintf(src, sizeof src, "%s", tiny("model/tokenizer.model"));
            fprintf(f, "    tokenizer_path: %s\n", src);
        } else
            fprintf(f, "%s\n", line);
        line = strtok(NULL, "\n");
    }
    fclose(f);
    return dir;
}

typedef enum { V_DROP, V_SHAPE, V_DTYPE } variant;

/* Writes the golden weights with one tensor altered. */
static int write_variant(const char *path, variant kind, const char *target) {
    char err[512];
    st_file *f = NULL;
    if (st_open(tiny("model/model.safetensors"), &f, err, sizeof err) != CTTS_OK) return -1;
    int n = st_count(f), k = 0;
    ctts_tensor *ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        ctts_tensor t = *st_tensor(f, i);
        if (!strcmp(t.name, target)) {
            if (kind == V_DROP) continue;
            if (kind == V_SHAPE) {
                t.shape[t.ndim - 1] /= 2;
                t.nbytes /= 2;
            }
            if (kind == V_DTYPE) t.dtype = CTTS_DT_I32;
        }
        ts[k++] = t;
    }
    ctts_status st = st_write(path, ts, k, err, sizeof err);
    free(ts);
    st_close(f);
    return st == CTTS_OK ? 0 : -1;
}

static void test_tokenize_and_option_forms(void) {
    int rc = run_ctts("tokenize", "--model", tiny("model"), "--text", "Hello world", NULL);
    CHECK_EQ_INT(rc, 0);
    /* c00_short: the prepared "Hello world." gives 509 667 271 422 317 291 266 262. */
    rc = run_ctts("tokenize", "--model=" , NULL);
    CHECK(rc != 0);
    char model_opt[600];
    snprintf(model_opt, sizeof model_opt, "--model=%s", tiny("model/config.yaml"));
    rc = run_ctts("tokenize", model_opt, "--text=Hello world", "--prepared", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(strcmp(out_text, "509 667 271 422 317 291 266 262\n") == 0);
    /* A text that starts with '-' is a value, not an option. */
    rc = run_ctts("tokenize", "--model", tiny("model"), "--text", "-5 degrees", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(strlen(out_text) > 2);
}

static void test_generate_wav_formats(void) {
    const char *o16 = tmp("a.wav"), *o32 = tmp("b.wav");
    int rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hello world", "--voice",
                      tiny("voice/voice_22k_state.safetensors"), "--temperature", "0",
                      "--eos-threshold=-3.3953", "--output", o16, NULL);
    CHECK_EQ_INT(rc, 0);
    struct stat sb;
    /* c00_short: 36480 samples, 16-bit: 44-byte header + 2 bytes a sample. */
    CHECK(stat(o16, &sb) == 0 && sb.st_size == 44 + 2 * 36480);
    rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hello world", "--voice",
                  tiny("voice/voice_22k_state.safetensors"), "--temperature", "0",
                  "--eos-threshold", "-3.3953", "--wav-format", "f32", "--output", o32, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(stat(o32, &sb) == 0 && sb.st_size >= 44 + 4 * 36480);
    rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hi", "--max-frames", "3",
                  "--voice", "none", "--output", o16, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(stat(o16, &sb) == 0 && sb.st_size == 44 + 2 * 3 * 1920);
}

static void test_error_missing_model_file(void) {
    int rc = run_ctts("generate", "--model", tmp("nope/config.yaml"), "--text", "Hi", "--output",
                      tmp("o.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, "nope/config.yaml");
}

static void test_error_unknown_config_name(void) {
    int rc = run_ctts("info", "--model", "klingon", NULL);
    CHECK_ONE_LINE_ERROR(rc, "unknown model 'klingon'");
}

static void test_error_bad_yaml(void) {
    const char *dir = model_dir("badyaml", "model.safetensors");
    char p[300];
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    write_file(p, "flow_lm: [unclosed\n  mimi: {\n", 29);
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "config.yaml");
    CHECK_STR_CONTAINS(err_text, "line");
    write_file(p, "flow_lm: 3\nmimi: 4\nsurprise: 1\n", 31);
    rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "unknown key 'surprise'");
}

static void test_error_missing_weights(void) {
    const char *dir = model_dir("noweights", "absent.safetensors");
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "absent.safetensors");
}

static void test_error_truncated_safetensors(void) {
    char buf[1 << 16];
    FILE *f = fopen(tiny("model/model.safetensors"), "rb");
    REQUIRE(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    REQUIRE(n == sizeof buf);
    const char *dir = model_dir("trunc", "cut.safetensors");
    char p[300];
    snprintf(p, sizeof p, "%s/cut.safetensors", dir);
    write_file(p, buf, sizeof buf); /* header intact, data cut */
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "cut.safetensors");
    write_file(p, buf, 5); /* shorter than the length field */
    rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "too short");
    /* Header length field pointing past the end of the file. */
    unsigned char hdr[16] = {0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0, '{', '}'};
    write_file(p, hdr, sizeof hdr);
    rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "header length");
}

static void test_error_wrong_dtype_shape_missing(void) {
    const char *t = "flow_lm.transformer.layers.1.linear1.weight";
    const char *dir = model_dir("dtype", "w.safetensors");
    char p[300];
    snprintf(p, sizeof p, "%s/w.safetensors", dir);
    REQUIRE(write_variant(p, V_DTYPE, t) == 0);
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, t);
    CHECK_STR_CONTAINS(err_text, "dtype");
    REQUIRE(write_variant(p, V_SHAPE, t) == 0);
    rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, t);
    CHECK_STR_CONTAINS(err_text, "shape");
    REQUIRE(write_variant(p, V_DROP, "mimi.decoder.model.5.convtr.bias") == 0);
    rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "missing tensor 'mimi.decoder.model.5.convtr.bias'");
}

static void test_error_duplicate_names(void) {
    const char *dir = model_dir("dup", "d.safetensors");
    char p[300];
    snprintf(p, sizeof p, "%s/d.safetensors", dir);
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    size_t hl = strlen(hdr);
    unsigned char buf[512] = {0};
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, hl);
    write_file(p, buf, 8 + hl + 8);
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "duplicate tensor name");
}

static void test_error_corrupt_tokenizer(void) {
    const char *dir = model_dir("badtok", tiny("model/model.safetensors"));
    char cfg[300], tok[300], yaml[4096];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", dir);
    snprintf(tok, sizeof tok, "%s/tokenizer.model", dir);
    write_file(tok, "\x0a\xff\xff\xff\x0f garbage", 14);
    read_all(cfg, yaml, sizeof yaml);
    char *at = strstr(yaml, "tokenizer_path:");
    REQUIRE(at);
    snprintf(at, sizeof yaml - (size_t)(at - yaml), "tokenizer_path: tokenizer.model\n%s",
             strstr(at, "mimi:"));
    write_file(cfg, yaml, strlen(yaml));
    int rc = run_ctts("info", "--model", dir, NULL);
    CHECK_ONE_LINE_ERROR(rc, "tokenizer.model");
}

static void test_error_empty_and_huge_text(void) {
    int rc = run_ctts("generate", "--model", tiny("model"), "--text", "   ", "--output",
                      tmp("o.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, "empty");
    /* 1 MB of text: must not crash or hang; generation is capped per chunk. */
    char *big = malloc(1 << 20);
    REQUIRE(big);
    for (int i = 0; i < (1 << 20) - 1; i++) big[i] = "lorem ipsum dolor sit amet. "[i % 28];
    big[(1 << 20) - 1] = 0;
    write_file(tmp("big.txt"), big, strlen(big));
    free(big);
    rc = run_ctts("tokenize", "--model", tiny("model"), "--text-file", tmp("big.txt"), NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(strlen(out_text) > 1000);
}

static void test_error_unknown_voice(void) {
    int rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hi", "--voice",
                      "nobody-here", "--output", tmp("o.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, "unknown voice 'nobody-here'");
    rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hi", "--voice",
                  tiny("model/model.safetensors"), "--output", tmp("o.wav"), NULL);
    CHECK_ONE_LINE_ERROR(rc, "model.safetensors");
}

static void test_error_unwritable_output(void) {
    int rc = run_ctts("generate", "--model", tiny("model"), "--text", "Hi", "--max-frames", "2",
                      "--output", "/nonexistent-dir/x/out.wav", NULL);
    CHECK_ONE_LINE_ERROR(rc, "/nonexistent-dir/x/out.wav");
}

static void test_usage_errors(void) {
    int rc = run_ctts("generate", "--model", tiny("model"), "--lsd-steps", "zero", NULL);
    CHECK_EQ_INT(rc, 2);
    CHECK_STR_CONTAINS(err_text, "--lsd-steps");
    rc = run_ctts("frobnicate", NULL);
    CHECK_EQ_INT(rc, 2);
    rc = run_ctts("generate", "--bogus", NULL);
    CHECK_EQ_INT(rc, 2);
    CHECK_STR_CONTAINS(err_text, "--bogus");
}

/* ctts dev membw prints a bandwidth; ctts bench --json runs the three texts
 * on the tiny model and reports positive speeds, the host bandwidth before and
 * after (measured in a child: the probe's 256 MB stay out of the peak RSS) and
 * with --profile the per-stage table. */
static void test_bench_and_membw(void) {
    int rc = run_ctts("dev", "membw", "--mb", "8", "--threads", "2", NULL);
    CHECK_EQ_INT(rc, 0);
    double gbs = 0;
    CHECK(sscanf(out_text, "%lf GB/s read (2 threads, 8 MB)", &gbs) == 1 && gbs > 0);
    CHECK_EQ_INT(run_ctts("dev", "membw", "--mb", "0", NULL), 2);
    CHECK_EQ_INT(run_ctts("dev", "frobnicate", NULL), 2);

    rc = run_ctts("bench", "--model", tiny("model"), "--runs", "1", "--max-frames", "2", "--json",
                  "--profile", NULL);
    CHECK_EQ_INT(rc, 0);
    double before = 0, after = 0, rss = 1e9;
    const char *p = strstr(out_text, "\"host_read_gbs\": [");
    CHECK(p && sscanf(p, "\"host_read_gbs\": [%lf, %lf]", &before, &after) == 2 && before > 0 &&
          after > 0);
    p = strstr(out_text, "\"peak_rss_mb\": ");
    CHECK(p && sscanf(p, "\"peak_rss_mb\": %lf", &rss) == 1 && rss > 0 && rss < 200);
    int texts = 0;
    for (p = out_text; (p = strstr(p, "\"x_real_time\": ")) != NULL; p++) {
        double x = 0;
        CHECK(sscanf(p, "\"x_real_time\": %lf", &x) == 1 && x > 0);
        texts++;
    }
    CHECK_EQ_INT(texts, 3);
    CHECK_STR_CONTAINS(out_text, "\"profile\": {\"frames\": ");
    CHECK(strrchr(out_text, '}') && out_text[strlen(out_text) - 2] == '}');
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
}

static void test_setup(void) { setup(); }

static void test_cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
}

TEST_MAIN(T(test_setup), T(test_tokenize_and_option_forms), T(test_generate_wav_formats),
          T(test_error_missing_model_file), T(test_error_unknown_config_name),
          T(test_error_bad_yaml), T(test_error_missing_weights),
          T(test_error_truncated_safetensors), T(test_error_wrong_dtype_shape_missing),
          T(test_error_duplicate_names), T(test_error_corrupt_tokenizer),
          T(test_error_empty_and_huge_text), T(test_error_unknown_voice),
          T(test_error_unwritable_output), T(test_usage_errors), T(test_bench_and_membw),
          T(test_cleanup))
