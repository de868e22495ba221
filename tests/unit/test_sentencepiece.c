/*
 * SentencePiece tokenizer tests: the tokenizer golden of the official
 * sentencepiece (ids, pieces, decode and slice decodes for three models with
 * NFKC and identity normalisation) and hostile tokenizer.model files
 * (truncations, byte flips, empty and text files) that must fail cleanly.
 * Golden data: $CTTS_GOLDEN or ../shared/golden (run from the repo root).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "text/sentencepiece.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *model_path(const char *name, char *buf, size_t len) {
    const char *g = test_golden_dir();
    if (strcmp(name, "full") == 0) snprintf(buf, len, "%s/pocket-full/tokenizer.model", g);
    else snprintf(buf, len, "%s/pocket-tiny/tokenizers/%s.model", g, name);
    return buf;
}

static int ids_match(const json_value *arr, const int32_t *ids, size_t n) {
    if (!arr || arr->type != JSON_ARRAY || arr->length != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (arr->items[i].type != JSON_NUMBER || arr->items[i].integer != ids[i]) return 0;
    return 1;
}

static int str_eq(const json_value *v, const char *s, size_t len) {
    return v && v->type == JSON_STRING && v->length == len && memcmp(v->string, s, len) == 0;
}

static void check_model(const json_value *root, const char *name) {
    char path[1024], err[512];
    const json_value *mj = json_get(json_get(root, "models"), name);
    REQUIRE(mj != NULL);
    spm_model *m = NULL;
    ctts_status st = spm_load(model_path(name, path, sizeof path), &m, err, sizeof err);
    if (st) fprintf(stderr, "    %s\n", err);
    REQUIRE(st == CTTS_OK);
    CHECK_EQ_INT(spm_vocab_size(m), json_get(mj, "vocab_size")->integer);
    CHECK_EQ_INT(spm_unk_id(m), json_get(mj, "unk_id")->integer);
    CHECK_EQ_INT(spm_bos_id(m), json_get(mj, "bos_id")->integer);
    CHECK_EQ_INT(spm_eos_id(m), json_get(mj, "eos_id")->integer);
    CHECK_EQ_INT(spm_pad_id(m), json_get(mj, "pad_id")->integer);
    const json_value *cases = json_get(mj, "cases");
    REQUIRE(cases && cases->type == JSON_ARRAY && cases->length > 100);
    int bad_ids = 0, bad_pieces = 0, bad_dec = 0, bad_slices = 0, n_slices = 0;
    for (size_t c = 0; c < cases->length; c++) {
        const json_value *cs = &cases->items[c];
        const json_value *text = json_get(cs, "text");
        int32_t *ids = NULL;
        size_t n = 0;
        st = spm_encode(m, text->string, text->length, &ids, &n, err, sizeof err);
        CHECK(st == CTTS_OK);
        if (st) continue;
        if (!ids_match(json_get(cs, "ids"), ids, n)) {
            if (bad_ids++ < 3) fprintf(stderr, "    %s case %zu: ids differ for '%s'\n", name, c, text->string);
        }
        const json_value *pieces = json_get(cs, "pieces");
        int pieces_ok = pieces && pieces->length == n;
        for (size_t i = 0; pieces_ok && i < n; i++) {
            const char *p = spm_piece(m, ids[i]);
            pieces_ok = p && str_eq(&pieces->items[i], p, strlen(p));
        }
        if (!pieces_ok) bad_pieces++;
        char *dec = NULL;
        st = spm_decode(m, ids, n, &dec, err, sizeof err);
        CHECK(st == CTTS_OK);
        if (st == CTTS_OK && !str_eq(json_get(cs, "decoded"), dec, strlen(dec))) {
            if (bad_dec++ < 3) fprintf(stderr, "    %s case %zu: decode '%s'\n", name, c, dec);
        }
        free(dec);
        /* slices decode the golden ids, so they test the decoder on its own */
        const json_value *gids = json_get(cs, "ids");
        const json_value *slices = json_get(cs, "slices");
        for (size_t k = 0; slices && k < slices->length; k++) {
            const json_value *sl = &slices->items[k];
            int64_t a = json_get(sl, "start")->integer, b = json_get(sl, "end")->integer;
            n_slices++;
            if (a < 0 || b < a || (size_t)b > gids->length) {
                bad_slices++;
                continue;
            }
            int32_t tmp[4096];
            if (b - a > 4096) continue;
            for (int64_t i = a; i < b; i++) tmp[i - a] = (int32_t)gids->items[i].integer;
            char *sd = NULL;
            if (spm_decode(m, tmp, (size_t)(b - a), &sd, err, sizeof err) != CTTS_OK ||
                !str_eq(json_get(sl, "decoded"), sd, strlen(sd))) {
                if (bad_slices++ < 3) fprintf(stderr, "    %s case %zu slice %zu: '%s'\n", name, c, k, sd ? sd : "(err)");
            }
            free(sd);
        }
        free(ids);
    }
    CHECK_EQ_INT(bad_ids, 0);
    CHECK_EQ_INT(bad_pieces, 0);
    CHECK_EQ_INT(bad_dec, 0);
    CHECK_EQ_INT(bad_slices, 0);
    CHECK(n_slices > 0);
    spm_free(m);
}

static json_value *load_golden(void) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/pocket-tiny/tokenizer_golden.json", test_golden_dir());
    json_value *root = json_parse_file(path, err, sizeof err);
    if (!root) fprintf(stderr, "    %s\n", err);
    return root;
}

static void test_golden_tiny(void) {
    json_value *root = load_golden();
    REQUIRE(root != NULL);
    check_model(root, "tiny");
    json_free(root);
}

static void test_golden_variant_identity(void) {
    json_value *root = load_golden();
    REQUIRE(root != NULL);
    check_model(root, "variant_identity");
    json_free(root);
}

static void test_golden_full(void) {
    json_value *root = load_golden();
    REQUIRE(root != NULL);
    check_model(root, "full");
    json_free(root);
}

static void test_decode_edges(void) {
    char path[1024], err[256];
    spm_model *m = NULL;
    REQUIRE(spm_load(model_path("tiny", path, sizeof path), &m, err, sizeof err) == CTTS_OK);
    char *s = NULL;
    int32_t bad = spm_vocab_size(m);
    CHECK(spm_decode(m, &bad, 1, &s, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(s == NULL);
    /* lone continuation byte + valid 2-byte sequence: U+FFFD then the char */
    int32_t bytes[3] = {4 + 0x80, 4 + 0xC3, 4 + 0xA9};
    CHECK_EQ_INT(strcmp(spm_piece(m, 4 + 0xC3), "<0xC3>"), 0);
    REQUIRE(spm_decode(m, bytes, 3, &s, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(strcmp(s, "\xef\xbf\xbd\xc3\xa9"), 0);
    free(s);
    /* control pieces vanish, <unk> prints its surface */
    int32_t ctl[3] = {1, 0, 2};
    REQUIRE(spm_decode(m, ctl, 3, &s, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(strcmp(s, " \xe2\x81\x87 "), 0);
    free(s);
    REQUIRE(spm_decode(m, NULL, 0, &s, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(strcmp(s, ""), 0);
    free(s);
    /* invalid UTF-8 input is encoded like U+FFFD, never read past the end */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(spm_encode(m, "a\xff\xe2\x96", 4, &ids, &n, err, sizeof err) == CTTS_OK);
    CHECK(n > 0);
    free(ids);
    spm_free(m);
}

static void test_corrupt_files(void) {
    char path[1024], err[256];
    size_t len = 0;
    char *good = read_all(model_path("tiny", path, sizeof path), &len);
    REQUIRE(good != NULL && len > 1000);
    spm_model *m = NULL;
    ctts_status st;

    CHECK(spm_load_memory(good, 0, "empty", &m, err, sizeof err) == CTTS_E_FORMAT);
    CHECK(m == NULL);
    const char *txt = "this is not a tokenizer model\nbut a text file\n";
    CHECK(spm_load_memory(txt, strlen(txt), "text", &m, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "text");
    CHECK(spm_load("/nonexistent/tokenizer.model", &m, err, sizeof err) == CTTS_E_IO);

    /* truncations: either a clean format error or (at a message boundary) a valid model */
    int n_format = 0, n_total = 0, n_other = 0;
    size_t step = len / 1500 + 1;
    for (size_t cut = 1; cut < len; cut += step) {
        char *b = malloc(cut);
        memcpy(b, good, cut);
        st = spm_load_memory(b, cut, "trunc", &m, err, sizeof err);
        n_total++;
        if (st == CTTS_E_FORMAT) n_format++;
        else if (st == CTTS_OK) {
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK(spm_encode(m, "Hello, world 123!", 17, &ids, &n, err, sizeof err) == CTTS_OK);
            free(ids);
            spm_free(m);
        } else n_other++;
        free(b);
    }
    CHECK_EQ_INT(n_other, 0);
    CHECK(n_format > n_total * 9 / 10);

    /* byte flips: any status is fine as long as nothing crashes and a loaded
     * model still encodes and decodes */
    uint64_t rng = 0x12345678u;
    int n_ok = 0;
    for (int it = 0; it < 400; it++) {
        char *b = malloc(len);
        memcpy(b, good, len);
        for (int k = 0; k < 1 + it % 4; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % len;
            b[pos] = (char)(rng >> 24);
        }
        st = spm_load_memory(b, len, "flip", &m, err, sizeof err);
        CHECK(st == CTTS_OK || st == CTTS_E_FORMAT || st == CTTS_E_UNSUPPORTED);
        if (st == CTTS_OK) {
            n_ok++;
            int32_t *ids = NULL;
            size_t n = 0;
            st = spm_encode(m, "Caf\xc3\xa9 \xef\xac\x81ne \xe2\x80\x94 12\xc2\xbd!", 19, &ids, &n, err, sizeof err);
            CHECK(st == CTTS_OK || st == CTTS_E_FORMAT);
            char *s = NULL;
            if (st == CTTS_OK && spm_decode(m, ids, n, &s, err, sizeof err) == CTTS_OK) free(s);
            free(ids);
            spm_free(m);
        } else {
            CHECK(m == NULL);
            CHECK(err[0] != 0);
        }
        free(b);
    }
    CHECK(n_ok < 400);
    free(good);
}

TEST_MAIN(T(test_golden_tiny), T(test_golden_variant_identity), T(test_golden_full),
          T(test_decode_edges), T(test_corrupt_files))
