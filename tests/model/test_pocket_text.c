/*
 * Pocket text front-end tests: prepared text, chunk strings, chunk token ids
 * and frames-after-EOS of every case in the tiny and full golden manifests
 * (computed by the official Python code), plus Python-semantics unit cases
 * (empty text, "ß" -> "SS", "½" -> "½.") and a 1 MB text that must split in
 * linear time into chunks that fit max_tokens or cannot be split further.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "models/pocket/pocket_text.h"
#include "text/sentencepiece.h"

static spm_model *load_tok(const char *rel) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s", test_golden_dir(), rel);
    spm_model *m = NULL;
    if (spm_load(path, &m, err, sizeof err) != CTTS_OK) fprintf(stderr, "    %s\n", err);
    return m;
}

static int count_json_str(const json_value *v, const char *s) {
    return v && v->type == JSON_STRING && v->length == strlen(s) && memcmp(v->string, s, v->length) == 0;
}

static void check_manifest(const char *manifest_rel, const char *tok_rel) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", test_golden_dir(), manifest_rel);
    json_value *root = json_parse_file(path, err, sizeof err);
    if (!root) fprintf(stderr, "    %s\n", err);
    REQUIRE(root != NULL);
    spm_model *sp = load_tok(tok_rel);
    if (!sp) json_free(root);
    REQUIRE(sp != NULL);
    const json_value *settings = json_get(root, "settings");
    pocket_text_options o = {
        .remove_semicolons = json_get(settings, "remove_semicolons")->boolean,
        .pad_with_spaces_for_short_inputs = json_get(settings, "pad_with_spaces_for_short_inputs")->boolean,
    };
    int max_tokens = (int)json_get(settings, "max_tokens_per_chunk")->integer;
    const json_value *cases = json_get(root, "cases");
    CHECK(cases && cases->length > 0);
    for (size_t c = 0; cases && c < cases->length; c++) {
        const json_value *cs = &cases->items[c];
        const char *id = json_get(cs, "id")->string;
        const char *text = json_get(cs, "text")->string;
        char *prep = NULL;
        int guess = 0;
        CHECK(pocket_prepare_text(text, &o, &prep, &guess, err, sizeof err) == CTTS_OK);
        if (!count_json_str(json_get(cs, "prepared_text"), prep ? prep : "")) {
            TEST_FAIL_AT("%s: prepared '%s'", id, prep ? prep : "(null)");
        }
        free(prep);
        char **chunks = NULL;
        int n = 0;
        ctts_status st = pocket_split_chunks(sp, text, &o, max_tokens, &chunks, &n, err, sizeof err);
        CHECK(st == CTTS_OK);
        const json_value *want = json_get(cs, "split_chunks");
        const json_value *gch = json_get(cs, "chunks");
        CHECK_EQ_INT(n, want->length);
        const json_value *fae_arg = json_get(cs, "frames_after_eos_arg");
        for (int i = 0; st == CTTS_OK && i < n && (size_t)i < want->length; i++) {
            if (!count_json_str(&want->items[i], chunks[i])) TEST_FAIL_AT("%s chunk %d: '%s'", id, i, chunks[i]);
            /* each chunk is tokenized again for the model */
            int32_t *ids = NULL;
            size_t n_ids = 0;
            CHECK(spm_encode(sp, chunks[i], strlen(chunks[i]), &ids, &n_ids, err, sizeof err) == CTTS_OK);
            const json_value *gt = json_get(&gch->items[i], "tokens");
            int same = gt->length == n_ids;
            for (size_t k = 0; same && k < n_ids; k++) same = gt->items[k].integer == ids[k];
            if (!same) TEST_FAIL_AT("%s chunk %d: tokens differ (%zu vs %zu)", id, i, n_ids, gt->length);
            free(ids);
            char *p2 = NULL;
            int g2 = 0;
            CHECK(pocket_prepare_text(chunks[i], &o, &p2, &g2, err, sizeof err) == CTTS_OK);
            free(p2);
            int fae = fae_arg->type == JSON_NULL ? g2 + 2 : (int)fae_arg->integer;
            CHECK_EQ_INT(fae, json_get(&gch->items[i], "frames_after_eos")->integer);
        }
        pocket_free_chunks(chunks, n);
    }
    spm_free(sp);
    json_free(root);
}

static void test_golden_tiny_manifest(void) {
    check_manifest("pocket-tiny/manifest.json", "pocket-tiny/model/tokenizer.model");
}

static void test_golden_full_manifest(void) {
    check_manifest("pocket-full/manifest.json", "pocket-full/tokenizer.model");
}

static void expect_prepared(const char *in, const pocket_text_options *o, const char *want, int want_guess) {
    char *out = NULL, err[256];
    int guess = -1;
    ctts_status st = pocket_prepare_text(in, o, &out, &guess, err, sizeof err);
    if (st != CTTS_OK) {
        TEST_FAIL_AT("'%s': %s", in, err);
        return;
    }
    if (strcmp(out, want) != 0) TEST_FAIL_AT("'%s' -> '%s', expected '%s'", in, out, want);
    if (want_guess >= 0 && guess != want_guess) TEST_FAIL_AT("'%s': guess %d, expected %d", in, guess, want_guess);
    free(out);
}

static void test_prepare_python_semantics(void) {
    char *out = (char *)1, err[256];
    int g;
    CHECK(pocket_prepare_text("", NULL, &out, &g, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(out == NULL);
    /* U+3000 ideographic space and U+0085 are Python whitespace */
    CHECK(pocket_prepare_text(" \t\n\r\xe3\x80\x80\xc2\x85 ", NULL, &out, &g, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(pocket_prepare_text("ab\xff", NULL, &out, &g, err, sizeof err) == CTTS_E_INVALID_ARG);
    expect_prepared("\xc3\x9f test", NULL, "SS test.", 3);          /* ß -> SS */
    expect_prepared("\xc2\xbd", NULL, "\xc2\xbd.", 3);               /* ½ is alnum */
    expect_prepared("\xc2\xb2", NULL, "\xc2\xb2.", 3);               /* ² is alnum */
    expect_prepared("\xef\xac\x81ne", NULL, "FIne.", 3);             /* ﬁ -> FI */
    expect_prepared("\xe6\x97\xa5", NULL, "\xe6\x97\xa5.", 3);       /* 日 */
    expect_prepared("hello world!", NULL, "Hello world!", 3);
    expect_prepared("a   b\n\nc", NULL, "A  b c.", 3);                /* one "  " pass only */
    expect_prepared("\xc3\xa9t\xc3\xa9", NULL, "\xc3\x89t\xc3\xa9.", 3);
    expect_prepared("one two three four five", NULL, "One two three four five.", 1);
    expect_prepared("one two three four", NULL, "One two three four.", 3);
    expect_prepared("1 2;3", NULL, "1 2;3.", 3);
    pocket_text_options semi = {.remove_semicolons = 1};
    expect_prepared("a;b;", &semi, "A,b,", 3);
    pocket_text_options pad = {.pad_with_spaces_for_short_inputs = 1};
    expect_prepared("hi there", &pad, "        Hi there.", 3);
    expect_prepared("one two three four five", &pad, "One two three four five.", 1);
}

static void test_split_small(void) {
    spm_model *sp = load_tok("pocket-tiny/model/tokenizer.model");
    REQUIRE(sp != NULL);
    char **chunks = NULL, err[256];
    int n = -1;
    CHECK(pocket_split_chunks(sp, "   ", NULL, 50, &chunks, &n, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(pocket_split_chunks(sp, "Hi.", NULL, 0, &chunks, &n, err, sizeof err) == CTTS_E_INVALID_ARG);
    REQUIRE(pocket_split_chunks(sp, "first one. second one! third?", NULL, 4, &chunks, &n, err, sizeof err) == CTTS_OK);
    CHECK(n >= 2);
    if (n >= 1) CHECK_STR_CONTAINS(chunks[0], "First");
    pocket_free_chunks(chunks, n);
    spm_free(sp);
}

/* Number of segments _find_boundary_indices would cut ids into. */
static size_t n_segments(const int32_t *ids, size_t n, const int32_t *set, size_t n_set) {
    size_t segs = 1;
    int prev = 0;
    for (size_t i = 0; i < n; i++) {
        int b = 0;
        for (size_t k = 0; k < n_set; k++) b |= ids[i] == set[k];
        if (!b && prev) segs++;
        prev = b;
    }
    return segs;
}

static void test_split_one_megabyte(void) {
    spm_model *sp = load_tok("pocket-tiny/model/tokenizer.model");
    REQUIRE(sp != NULL);
    static const char *parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "Is this the real life, or is it just fantasy? ",
        "A rather long sentence that keeps going with commas, clauses, asides, and more words; "
        "it should be re-split on its commas because it is far longer than the limit allows, "
        "which is what the fallback boundaries are for! ",
        "Numbers like 12 and 345 appear too.\n", /* no "1.5": joins there add tokens (golden c03) */
        "averyveryverylongwordwithoutanypunctuationthatcannotbesplitanywhereatallbytheboundarytokens"
        "averyveryverylongwordwithoutanypunctuationthatcannotbesplitanywhereatall ",
    };
    size_t cap = (1u << 20) + 1024, len = 0;
    char *text = malloc(cap);
    REQUIRE(text != NULL);
    for (int k = 0; len < (1u << 20);) {
        size_t pl = strlen(parts[k % 5]);
        memcpy(text + len, parts[k % 5], pl);
        len += pl;
        k = k * 7 + 3;
        k %= 1000003;
    }
    text[len] = 0;
    char **chunks = NULL, err[256];
    int n = 0;
    ctts_status st = pocket_split_chunks(sp, text, NULL, 50, &chunks, &n, err, sizeof err);
    free(text);
    CHECK(st == CTTS_OK);
    CHECK(n > 1000);
    int32_t *eos = NULL, *fb = NULL;
    size_t n_eos = 0, n_fb = 0;
    REQUIRE(spm_encode(sp, ".!...?", 6, &eos, &n_eos, err, sizeof err) == CTTS_OK);
    REQUIRE(spm_encode(sp, ",;:", 3, &fb, &n_fb, err, sizeof err) == CTTS_OK);
    int over = 0, bad = 0;
    for (int i = 0; st == CTTS_OK && i < n; i++) {
        int32_t *ids = NULL;
        size_t m = 0;
        CHECK(spm_encode(sp, chunks[i], strlen(chunks[i]), &ids, &m, err, sizeof err) == CTTS_OK);
        if (m == 0) bad++;
        if (m > 50) {
            over++;
            /* an oversized chunk must be one sentence with no comma to cut at */
            if (n_segments(ids, m, eos + 1, n_eos - 1) > 1 || n_segments(ids, m, fb + 1, n_fb - 1) > 1) {
                if (bad++ < 3) fprintf(stderr, "    splittable %zu-token chunk: %.80s\n", m, chunks[i]);
            }
        }
        free(ids);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(over < n);
    free(eos);
    free(fb);
    pocket_free_chunks(chunks, n);
    spm_free(sp);
}

TEST_MAIN(T(test_golden_tiny_manifest), T(test_golden_full_manifest),
          T(test_prepare_python_semantics), T(test_split_small), T(test_split_one_megabyte))
