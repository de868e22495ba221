/*
 * Tests for src/io/safetensors: reading the golden tiny model, byte-identical
 * re-writing of golden files, write -> read round trips, a corpus of
 * malformed files generated into a mkdtemp directory (each checked for status
 * and message), and a fuzz-ish loop (truncations and header byte flips of the
 * golden model) that must only ever produce errors or valid files.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "base/rng.h"
#include "io/safetensors.h"

static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[256];
    if (!tmp_dir[0]) {
        strcpy(tmp_dir, "/tmp/ctts_st_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    return buf;
}

static const char *golden(const char *rel) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/pocket-tiny/%s", test_golden_dir(), rel);
    return buf;
}

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Writes a safetensors file with the given header text and data_len zero bytes of data. */
static const char *make_st(const char *name, const char *header, size_t data_len) {
    const char *path = tmp_path(name);
    size_t hl = strlen(header);
    size_t total = 8 + hl + data_len;
    unsigned char *b = calloc(1, total);
    if (!b) return NULL;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    int rc = write_bytes(path, b, total);
    free(b);
    return rc ? NULL : path;
}

static void expect_open_error(const char *path, ctts_status want, const char *needle) {
    char err[512] = "";
    st_file *f = (st_file *)1;
    if (!path) {
        TEST_FAIL_AT("could not create test file for '%s'", needle);
        return;
    }
    ctts_status st = st_open(path, &f, err, sizeof err);
    if (st != want) TEST_FAIL_AT("st_open(%s) = %d, expected %d (%s)", path, st, want, err);
    if (f) TEST_FAIL_AT("st_open(%s) left *out non-NULL", path);
    if (!strstr(err, needle)) TEST_FAIL_AT("error '%s' does not contain '%s'", err, needle);
    if (!strstr(err, path)) TEST_FAIL_AT("error '%s' does not name the file", err);
    if (f && f != (st_file *)1) st_close(f);
}

static void test_read_golden_model(void) {
    char err[512];
    st_file *f;
    ctts_status st = st_open(golden("model/model.safetensors"), &f, err, sizeof err);
    if (st == CTTS_E_IO) SKIP("golden model missing: %.200s", err);
    REQUIRE(st == CTTS_OK);
    CHECK_EQ_INT(st_count(f), 130);
    CHECK(strcmp(st_metadata_get(f, "format"), "pt") == 0);
    CHECK_EQ_INT(st_metadata_count(f), 1);
    CHECK(st_metadata_get(f, "nope") == NULL);
    const ctts_tensor *t = st_tensor(f, 0);
    REQUIRE(t);
    CHECK(strcmp(t->name, "flow_lm.bos_before_voice") == 0);
    CHECK(t->dtype == CTTS_DT_F32 && t->ndim == 3 && t->shape[0] == 1 && t->shape[2] == 64);
    CHECK_EQ_INT(t->nbytes, 256);
    float v[3];
    memcpy(v, t->data, sizeof v);
    CHECK(v[0] == -0.44328317046165466f && v[1] == 0.8047177791595459f);

    t = st_find(f, "flow_lm.conditioner.embed.weight");
    REQUIRE(t);
    CHECK(t->ndim == 2 && t->shape[0] == 1001 && t->shape[1] == 64);
    memcpy(v, (const char *)t->data + t->nbytes - 4, 4);
    CHECK(v[0] == -0.24122324585914612f);
    t = st_find(f, "mimi.upsample.convtr.convtr.weight");
    REQUIRE(t);
    CHECK(t->ndim == 3 && t->shape[0] == 32 && t->shape[1] == 1 && t->shape[2] == 32);
    memcpy(v, t->data, 4);
    CHECK(v[0] == -0.7860181331634521f);
    CHECK(st_find(f, "mimi.nope") == NULL);
    CHECK(st_find(f, "") == NULL);
    CHECK(st_tensor(f, 130) == NULL && st_tensor(f, -1) == NULL);

    int64_t params = 0;
    for (int i = 0; i < st_count(f); i++) {
        const ctts_tensor *x = st_tensor(f, i);
        params += ctts_tensor_numel(x);
        CHECK(st_find(f, x->name) == x);
    }
    CHECK_EQ_INT(params, 406858);
    CHECK(strstr(st_path(f), "model.safetensors") != NULL);
    st_close(f);
}

/* Opens a golden file, writes it back (with or without metadata as it has), compares bytes. */
static void rewrite_identical(const char *rel) {
    char err[512];
    st_file *f;
    const char *src = golden(rel);
    char src_copy[512];
    snprintf(src_copy, sizeof src_copy, "%s", src);
    if (st_open(src_copy, &f, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("open %s: %s", src_copy, err);
        return;
    }
    int n = st_count(f);
    ctts_tensor *ts = malloc((size_t)n * sizeof *ts);
    for (int i = 0; i < n; i++) ts[n - 1 - i] = *st_tensor(f, i); /* reversed: writer must sort */
    const char *keys[8], *vals[8];
    int nm = st_metadata_count(f);
    for (int i = 0; i < nm && i < 8; i++) {
        keys[i] = st_metadata_key(f, i);
        vals[i] = st_metadata_value(f, i);
    }
    const char *out = tmp_path("rewrite.safetensors");
    ctts_status st = st_write_meta(out, ts, n, keys, vals, nm, err, sizeof err);
    if (st) TEST_FAIL_AT("write: %s", err);
    size_t na, nb;
    unsigned char *a = read_all(src_copy, &na), *b = read_all(out, &nb);
    if (!a || !b || na != nb || memcmp(a, b, na) != 0)
        TEST_FAIL_AT("%s: rewrite differs (%zu vs %zu bytes)", rel, na, nb);
    free(a);
    free(b);
    free(ts);
    st_close(f);
    remove(out);
}

static void test_rewrite_golden_identical(void) {
    struct stat sb;
    if (stat(golden("voice/voice_22k_state.safetensors"), &sb) != 0) SKIP("golden data missing");
    rewrite_identical("voice/voice_22k_state.safetensors");
    rewrite_identical("model/model.safetensors");
    rewrite_identical("model/flow_lm.safetensors");
    rewrite_identical("cases/c00_short.safetensors");
    rewrite_identical("voice/voice_22k_intermediates.safetensors");
}

static void test_round_trip(void) {
    char err[512];
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    int64_t idx[2] = {INT64_MIN, 42};
    uint8_t bytes[3] = {1, 2, 255};
    uint16_t halfs[4] = {0x3c00, 0xbc00, 0x7c00, 0x0001};
    ctts_tensor ts[5] = {
        {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {2, 3}, .data = a, .nbytes = sizeof a, .name = "z.weight"},
        {.dtype = CTTS_DT_I64, .ndim = 1, .shape = {2}, .data = idx, .nbytes = sizeof idx, .name = "a\"quote\\"},
        {.dtype = CTTS_DT_U8, .ndim = 3, .shape = {1, 3, 1}, .data = bytes, .nbytes = 3, .name = "m.bytes"},
        {.dtype = CTTS_DT_BF16, .ndim = 1, .shape = {4}, .data = halfs, .nbytes = 8, .name = "h\xC3\xA9"},
        {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {0, 5}, .data = NULL, .nbytes = 0, .name = "empty"},
    };
    const char *path = tmp_path("rt.safetensors");
    REQUIRE(st_write(path, ts, 5, err, sizeof err) == CTTS_OK);
    st_file *f;
    REQUIRE(st_open(path, &f, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(st_count(f), 5);
    /* header order = sorted by name */
    CHECK(strcmp(st_tensor(f, 0)->name, "a\"quote\\") == 0);
    CHECK(strcmp(st_tensor(f, 4)->name, "z.weight") == 0);
    for (int i = 0; i < 5; i++) {
        const ctts_tensor *t = st_find(f, ts[i].name);
        REQUIRE(t);
        CHECK(t->dtype == ts[i].dtype && t->ndim == ts[i].ndim && t->nbytes == ts[i].nbytes);
        for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == ts[i].shape[d]);
        if (t->nbytes) CHECK(memcmp(t->data, ts[i].data, t->nbytes) == 0);
    }
    CHECK(st_is_aligned(st_find(f, "m.bytes")));
    st_close(f);

    /* no metadata at all */
    REQUIRE(st_write_meta(path, ts, 1, NULL, NULL, 0, err, sizeof err) == CTTS_OK);
    size_t n;
    unsigned char *b = read_all(path, &n);
    REQUIRE(b);
    CHECK(n > 16 && memcmp(b + 8, "{\"z.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 64) == 0);
    CHECK((b[0] | (b[1] << 8)) % 8 == 0);
    free(b);

    /* writer errors */
    ts[0].nbytes = 20;
    CHECK(st_write(path, ts, 1, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "z.weight");
    ts[0].nbytes = 24;
    ctts_tensor dup[2] = {ts[0], ts[0]};
    CHECK(st_write(path, dup, 2, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "duplicate");
    CHECK(st_write("/nonexistent-dir/x.safetensors", ts, 1, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "/nonexistent-dir/x.safetensors");
    remove(path);
}

static void test_unaligned_data(void) {
    /* header of 9 bytes: data section starts at offset 17, F32 data unaligned */
    char err[512];
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    const char *path = make_st("unaligned.safetensors", h, 4);
    REQUIRE(path);
    st_file *f;
    REQUIRE(st_open(path, &f, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(strlen(h) % 4 != 0, !st_is_aligned(st_tensor(f, 0)));
    st_close(f);
}

static void test_malformed(void) {
    char buf[512];
    expect_open_error(tmp_path("does_not_exist.safetensors"), CTTS_E_IO, "cannot open");
    const char *p = tmp_path("empty.safetensors");
    write_bytes(p, "", 0);
    expect_open_error(p, CTTS_E_FORMAT, "too short");
    p = tmp_path("four.safetensors");
    write_bytes(p, "\x01\x00\x00\x00", 4);
    expect_open_error(p, CTTS_E_FORMAT, "too short");
    p = tmp_path("hlen_past_eof.safetensors");
    write_bytes(p, "\x40\x00\x00\x00\x00\x00\x00\x00{}", 10);
    expect_open_error(p, CTTS_E_FORMAT, "header length 64 exceeds the file size");
    p = tmp_path("hlen_huge.safetensors");
    write_bytes(p, "\x00\x00\x00\x00\x00\x00\x00\x80{}", 10);
    expect_open_error(p, CTTS_E_FORMAT, "header length 9223372036854775808 exceeds");
    expect_open_error(make_st("not_json.safetensors", "{hello", 0), CTTS_E_FORMAT, "not valid JSON");
    expect_open_error(make_st("array.safetensors", "[1,2]", 0), CTTS_E_FORMAT, "JSON array, not an object");
    expect_open_error(make_st("dtype.safetensors", "{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
                      CTTS_E_FORMAT, "unknown dtype \"F8\" (tensor 'w')");
    expect_open_error(make_st("q8.safetensors", "{\"w\":{\"dtype\":\"Q8_0\",\"shape\":[32],\"data_offsets\":[0,34]}}", 34),
                      CTTS_E_FORMAT, "unknown dtype");
    expect_open_error(make_st("span.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24),
                      CTTS_E_FORMAT, "does not match the 20-byte data_offsets span (tensor 'w')");
    expect_open_error(make_st("past_end.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4),
                      CTTS_E_FORMAT, "past the data section (4 bytes) (tensor 'w')");
    expect_open_error(make_st("begin_end.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8),
                      CTTS_E_FORMAT, "begin 8 > end 4");
    expect_open_error(make_st("overlap.safetensors",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
                      CTTS_E_FORMAT, "overlap");
    expect_open_error(make_st("dup.safetensors",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                      CTTS_E_FORMAT, "duplicate tensor name (tensor 'a')");
    expect_open_error(make_st("neg_shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                      CTTS_E_FORMAT, "shape[0] is not a non-negative integer");
    expect_open_error(make_st("float_off.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4),
                      CTTS_E_FORMAT, "data_offsets[1] is not a non-negative integer");
    expect_open_error(make_st("str_off.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4),
                      CTTS_E_FORMAT, "data_offsets[0]");
    expect_open_error(make_st("three_off.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8),
                      CTTS_E_FORMAT, "must be [begin, end]");
    expect_open_error(make_st("meta.safetensors", "{\"__metadata__\":{\"format\":1}}", 0), CTTS_E_FORMAT,
                      "\"__metadata__\" value for \"format\" is a number");
    expect_open_error(make_st("meta_arr.safetensors", "{\"__metadata__\":[]}", 0), CTTS_E_FORMAT,
                      "\"__metadata__\" is a array");
    expect_open_error(make_st("no_dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                      CTTS_E_FORMAT, "\"dtype\" (tensor 'w')");
    expect_open_error(make_st("no_shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                      CTTS_E_FORMAT, "\"shape\" (tensor 'w')");
    expect_open_error(make_st("entry_num.safetensors", "{\"w\":5}", 0), CTTS_E_FORMAT, "not an object (tensor 'w')");
    expect_open_error(make_st("empty_name.safetensors", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                      CTTS_E_FORMAT, "empty tensor name");
    expect_open_error(make_st("dims.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
                      CTTS_E_FORMAT, "7 dims");
    expect_open_error(make_st("numel_overflow.safetensors",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0),
                      CTTS_E_FORMAT, "does not match");
    expect_open_error(make_st("bytes_overflow.safetensors",
                              "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0),
                      CTTS_E_FORMAT, "does not match");
    expect_open_error(make_st("huge_off.safetensors",
                              "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 0),
                      CTTS_E_FORMAT, "past the data section");
    snprintf(buf, sizeof buf, "{\"w\\u0000x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    expect_open_error(make_st("nul_name.safetensors", buf, 1), CTTS_E_FORMAT, "NUL");
    expect_open_error(tmp_dir, CTTS_E_IO, "not a regular file");

    /* valid edge cases */
    char err[512];
    st_file *f;
    p = make_st("empty_obj.safetensors", "{}      ", 0);
    REQUIRE(st_open(p, &f, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(st_count(f), 0);
    CHECK(st_find(f, "x") == NULL);
    st_close(f);
    p = make_st("gaps_zero.safetensors",
                "{\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]},"
                "\"a\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                "\"c\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[8,8]},\"extra\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2],\"junk\":1}}",
                12);
    REQUIRE(st_open(p, &f, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(st_count(f), 4);
    CHECK(strcmp(st_tensor(f, 0)->name, "b") == 0);
    CHECK(st_find(f, "b")->ndim == 0 && st_find(f, "b")->nbytes == 4);
    CHECK(st_find(f, "extra")->dtype == CTTS_DT_BOOL);
    st_close(f);
}

static void test_fuzz_golden(void) {
    size_t n;
    unsigned char *orig = read_all(golden("model/model.safetensors"), &n);
    if (!orig) SKIP("golden model missing");
    unsigned char *buf = malloc(n);
    REQUIRE(buf);
    ctts_rng rng;
    ctts_rng_seed(&rng, 1234);
    const char *path = tmp_path("fuzz.safetensors");
    size_t hlen = (size_t)orig[0] | ((size_t)orig[1] << 8) | ((size_t)orig[2] << 16);
    int n_ok = 0, n_err = 0;
    char err[512];
    for (int it = 0; it < 700; it++) {
        size_t len = n;
        memcpy(buf, orig, n);
        if (it < 200) {
            /* truncate: mostly inside the header, sometimes in the data */
            len = (size_t)(ctts_rng_u64(&rng) % (it % 2 ? n : hlen + 16));
        } else {
            int flips = 1 + (int)(ctts_rng_u64(&rng) % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = (size_t)(ctts_rng_u64(&rng) % (hlen + 8));
                if (ctts_rng_u64(&rng) & 1)
                    buf[at] ^= (unsigned char)(1u << (ctts_rng_u64(&rng) % 8));
                else
                    buf[at] = (unsigned char)"0123456789[]{},:\"-e.\\ "[ctts_rng_u64(&rng) % 23];
            }
        }
        if (write_bytes(path, buf, len)) {
            TEST_FAIL_AT("write failed");
            break;
        }
        st_file *f = NULL;
        ctts_status st = st_open(path, &f, err, sizeof err);
        if (st == CTTS_OK) {
            n_ok++;
            /* every tensor must lie inside the file */
            for (int i = 0; i < st_count(f); i++) {
                const ctts_tensor *t = st_tensor(f, i);
                volatile unsigned char sink = 0;
                if (t->nbytes) sink ^= ((const unsigned char *)t->data)[t->nbytes - 1];
                (void)sink;
                CHECK(st_find(f, t->name) == t);
            }
            st_close(f);
        } else {
            n_err++;
            CHECK(st == CTTS_E_FORMAT);
            CHECK(f == NULL);
            CHECK(strlen(err) > 0);
        }
    }
    CHECK(n_err > 200);
    CHECK(n_ok + n_err == 700);
    free(buf);
    free(orig);
    remove(path);
}

static void cleanup(void) {
    if (!tmp_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
}

static void test_cleanup(void) { cleanup(); }

TEST_MAIN(T(test_read_golden_model), T(test_rewrite_golden_identical), T(test_round_trip),
          T(test_unaligned_data), T(test_malformed), T(test_fuzz_golden), T(test_cleanup))
