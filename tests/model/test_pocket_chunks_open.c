/*
 * Incremental chunking (pocket_split_chunks_open): for text still arriving,
 * the chunks it returns must be the leading chunks of pocket_split_chunks
 * for EVERY longer text. Checked on random texts (sentences, clauses, long
 * comma-less sentences, double spaces, newlines, semicolons, unicode,
 * numbers) cut at every byte, against the real text and against adversarial
 * continuations (nothing, spaces, punctuation, a glued word), for several
 * max_tokens and all three golden tokenizers; plus that the stream's
 * shortcut (re-chunk only when it may matter) never starts a chunk later than
 * re-chunking at every byte would, that the incremental chunker gives the
 * same chunks as the stateless open split after every byte, and that a
 * sentence or clause really does start before the end of the text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_text.h"
#include "text/sentencepiece.h"

static spm_model *load_tok(const char *rel) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s", test_golden_dir(), rel);
    spm_model *m = NULL;
    if (spm_load(path, &m, err, sizeof err) != CTTS_OK) fprintf(stderr, "    %s\n", err);
    return m;
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static const char *const words[] = {
    "hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    "streaming", "is", "fun", "a", "I", "ok", "12", "3.5", "$1,234", "don't", "e.g.",
    "caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", "x",
    "Mr.", "well-known", "(maybe)", "\xe2\x80\x9cquoted\xe2\x80\x9d", "\xef\xbc\xa1\xef\xbc\xa2",
};
static const char *const puncts[] = {".", ",", "!", "?", "...", ";", ":", "", "", "", "", ""};
static const char *const spaces[] = {" ", " ", " ", " ", "  ", "\n", " \n ", "   "};

/* A random text of about n_words words. */
static char *random_text(int n_words) {
    size_t cap = (size_t)n_words * 24 + 64, len = 0;
    char *t = malloc(cap);
    if (rnd(4) == 0) len += (size_t)sprintf(t, "  ");
    for (int i = 0; i < n_words; i++) {
        const char *w = words[rnd(sizeof words / sizeof *words)];
        const char *p = puncts[rnd(sizeof puncts / sizeof *puncts)];
        /* now and then a long clause-free run, to force the max_tokens re-split */
        if (rnd(10) == 0) p = "";
        len += (size_t)snprintf(t + len, cap - len, "%s%s", w, p);
        if (i + 1 < n_words)
            len += (size_t)snprintf(t + len, cap - len, "%s", spaces[rnd(sizeof spaces / sizeof *spaces)]);
    }
    if (rnd(3) == 0) len += (size_t)snprintf(t + len, cap - len, " ");
    return t;
}

static int n_failures;

/* open chunks of text[0..cut) must start every split of cut + continuation. */
static void check_prefix(const spm_model *sp, const pocket_text_options *o, int max_tokens,
                         const char *text, size_t cut, const char *cont) {
    char err[256];
    char **oc = NULL;
    int on = 0, tail = 0;
    ctts_status st = pocket_split_chunks_open(sp, text, cut, o, max_tokens, &oc, &on, &tail, err,
                                              sizeof err);
    if (st != CTTS_OK) {
        if (n_failures++ < 5) TEST_FAIL_AT("open split failed: %s", err);
        return;
    }
    size_t cl = strlen(cont);
    char *full = malloc(cut + cl + 1);
    memcpy(full, text, cut);
    memcpy(full + cut, cont, cl + 1);
    char **fc = NULL;
    int fn = 0;
    st = pocket_split_chunks(sp, full, o, max_tokens, &fc, &fn, err, sizeof err);
    if (st != CTTS_OK) {
        /* a continuation glued into a UTF-8 character is no text; else an
         * unsplittable (empty) text must come from a prefix giving nothing */
        if (on != 0 && !strstr(err, "UTF-8") && n_failures++ < 5)
            TEST_FAIL_AT("open chunks of an unsplittable text: %s", err);
    } else {
        int bad = on > fn;
        for (int i = 0; i < on && !bad; i++) bad = strcmp(oc[i], fc[i]) != 0;
        if (bad && n_failures++ < 5)
            TEST_FAIL_AT("max_tokens %d: prefix of %zu bytes gives %d chunks that the text "
                         "'%.60s' + '%s' does not start with (first: '%.40s' vs '%.40s')",
                         max_tokens, cut, on, text, cont, on ? oc[0] : "", fn ? fc[0] : "");
    }
    pocket_free_chunks(oc, on);
    pocket_free_chunks(fc, fn);
    free(full);
}

static void check_tokenizer(const char *rel, int n_texts) {
    spm_model *sp = load_tok(rel);
    REQUIRE(sp);
    CHECK(pocket_text_can_stream(sp));
    static const char *const conts[] = {"", " ", "  \n", ".", " .", " ...", ",", " x", "x y",
                                        "! Next one.", " and, then; more: words"};
    static const int maxes[] = {3, 8, 20, 50};
    n_failures = 0;
    int total_final = 0;
    for (int k = 0; k < n_texts; k++) {
        char *text = random_text(6 + (int)rnd(40));
        size_t len = strlen(text);
        pocket_text_options o = {(int)rnd(2), (int)rnd(2)};
        int max_tokens = maxes[rnd(4)];
        for (size_t cut = 0; cut <= len; cut++) {
            check_prefix(sp, &o, max_tokens, text, cut, text + cut);
            if (rnd(4) == 0)
                check_prefix(sp, &o, max_tokens, text, cut, conts[rnd(sizeof conts / sizeof *conts)]);
        }
        char err[256], **oc = NULL;
        int on = 0;
        if (pocket_split_chunks_open(sp, text, len, &o, max_tokens, &oc, &on, NULL, err,
                                     sizeof err) == CTTS_OK)
            total_final += on;
        pocket_free_chunks(oc, on);
        free(text);
    }
    /* the property is not met by never returning anything */
    CHECK(total_final > n_texts / 2);
    spm_free(sp);
}

static void test_open_chunks_full_tokenizer(void) {
    rng_state = 1;
    check_tokenizer("pocket-full/tokenizer.model", 150);
}

static void test_open_chunks_tiny_tokenizers(void) {
    rng_state = 2;
    check_tokenizer("pocket-tiny/tokenizers/tiny.model", 60);
    rng_state = 3;
    check_tokenizer("pocket-tiny/tokenizers/variant_identity.model", 60);
}

/* Known cases: a sentence is final once the next word is complete and the
 * chunk cannot take it; a clause once an over-long sentence passes its comma. */
static void test_open_chunks_examples(void) {
    spm_model *sp = load_tok("pocket-full/tokenizer.model");
    REQUIRE(sp);
    pocket_text_options o = {0, 0};
    char err[256], **c = NULL;
    int n = 0, tail = 0;
    const char *t1 = "Hello world. How are";
    REQUIRE(pocket_split_chunks_open(sp, t1, strlen(t1), &o, 4, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 1);
    if (n == 1) CHECK(strcmp(c[0], "Hello world.") == 0);
    pocket_free_chunks(c, n);
    /* with room for more, the chunk may still grow */
    REQUIRE(pocket_split_chunks_open(sp, t1, strlen(t1), &o, 50, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 0);
    pocket_free_chunks(c, n);
    /* the word after the period is not complete yet */
    const char *t2 = "Hello world. Ho";
    REQUIRE(pocket_split_chunks_open(sp, t2, strlen(t2), &o, 4, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 0);
    pocket_free_chunks(c, n);
    /* a comma clause of a sentence already over max_tokens */
    const char *t3 = "one two three four five six, seven eight nine ten eleven twelve thirteen ";
    REQUIRE(pocket_split_chunks_open(sp, t3, strlen(t3), &o, 8, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 1);
    if (n == 1) CHECK(strcmp(c[0], "One two three four five six,") == 0);
    CHECK(tail > 8);
    pocket_free_chunks(c, n);
    /* nothing complete: no chunk, no error */
    REQUIRE(pocket_split_chunks_open(sp, "Hello", 5, &o, 4, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 0);
    REQUIRE(pocket_split_chunks_open(sp, "   ", 3, &o, 4, &c, &n, &tail, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 0);
    /* invalid UTF-8 before the cut is an error, as for the whole text */
    const char *bad = "Hello \xff world. And more ";
    CHECK(pocket_split_chunks_open(sp, bad, strlen(bad), &o, 4, &c, &n, &tail, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    spm_free(sp);
}

/* The stream's shortcut must know every final chunk as soon as re-chunking
 * at every byte would: fed byte by byte, the stream's chunk count equals
 * the open split of the text so far after each byte. */
static void test_stream_shortcut_loses_nothing(void) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/pocket-tiny/model/config.yaml", test_golden_dir());
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    pocket_model *m = NULL;
    REQUIRE(pocket_model_load(path, &mp, &m, err, sizeof err) == CTTS_OK);
    spm_model *sp = load_tok("pocket-tiny/model/tokenizer.model");
    REQUIRE(sp);
    pocket_stream *s = NULL;
    REQUIRE(pocket_stream_new(m, &s, err, sizeof err) == CTTS_OK);
    const pocket_config *c = pocket_model_config(m);
    pocket_text_options o = {c->remove_semicolons, c->pad_with_spaces_for_short_inputs};
    rng_state = 4;
    static const int maxes[] = {3, 8, 20, 50};
    int mismatches = 0, started_early = 0;
    for (int k = 0; k < 40; k++) {
        char *text = random_text(10 + (int)rnd(50));
        size_t len = strlen(text);
        ctts_gen_params p = pocket_default_gen_params();
        p.max_tokens_per_chunk = maxes[rnd(4)];
        REQUIRE(pocket_stream_begin(s, NULL, &p, err, sizeof err) == CTTS_OK);
        for (size_t i = 0; i < len; i++) {
            REQUIRE(pocket_stream_feed(s, text + i, 1, err, sizeof err) == CTTS_OK);
            char **oc = NULL;
            int on = 0;
            REQUIRE(pocket_split_chunks_open(sp, text, i + 1, &o, p.max_tokens_per_chunk, &oc,
                                             &on, NULL, err, sizeof err) == CTTS_OK);
            if (pocket_stream_n_chunks(s) != on && mismatches++ < 3)
                TEST_FAIL_AT("after %zu bytes of '%.50s' (max %d): stream knows %d chunks, "
                             "open split %d", i + 1, text, p.max_tokens_per_chunk,
                             pocket_stream_n_chunks(s), on);
            pocket_free_chunks(oc, on);
        }
        if (pocket_stream_n_chunks(s) > 0) started_early++;
        REQUIRE(pocket_stream_end(s, err, sizeof err) == CTTS_OK);
        free(text);
    }
    CHECK(started_early > 10);
    pocket_stream_free(s);
    spm_free(sp);
    pocket_model_free(m);
}

/* The incremental chunker gives the open split's chunks, string for string,
 * after every byte of random texts (each tokenizer, several max_tokens). */
static void check_chunker(const char *rel, int n_texts) {
    spm_model *sp = load_tok(rel);
    REQUIRE(sp);
    static const int maxes[] = {3, 8, 20, 50};
    int bad = 0;
    for (int k = 0; k < n_texts && !bad; k++) {
        char *text = random_text(10 + (int)rnd(40));
        size_t len = strlen(text);
        pocket_text_options o = {(int)rnd(2), (int)rnd(2)};
        int max_tokens = maxes[rnd(4)];
        char err[256];
        pocket_chunker *c = NULL;
        REQUIRE(pocket_chunker_new(sp, &o, max_tokens, &c, err, sizeof err) == CTTS_OK);
        char *known[512];
        int n_known = 0;
        for (size_t i = 1; i <= len && !bad; i++) {
            char **nc = NULL, **oc = NULL;
            int nn = 0, on = 0, h1 = 0, h2 = 0;
            REQUIRE(pocket_chunker_update(c, text, i, n_known, &nc, &nn, &h1, err, sizeof err) == CTTS_OK);
            for (int j = 0; j < nn && n_known < 512; j++) {
                known[n_known++] = nc[j];
                nc[j] = NULL;
            }
            pocket_free_chunks(nc, nn);
            REQUIRE(pocket_split_chunks_open(sp, text, i, &o, max_tokens, &oc, &on, &h2, err,
                                             sizeof err) == CTTS_OK);
            int same = on == n_known && h1 == h2;
            for (int j = 0; same && j < on; j++) same = strcmp(oc[j], known[j]) == 0;
            if (!same) {
                bad = 1;
                TEST_FAIL_AT("%s, max %d, after %zu bytes of '%.60s': chunker %d chunks "
                             "(headroom %d), open split %d (headroom %d)", rel, max_tokens, i,
                             text, n_known, h1, on, h2);
            }
            pocket_free_chunks(oc, on);
        }
        for (int j = 0; j < n_known; j++) free(known[j]);
        pocket_chunker_free(c);
        free(text);
    }
    spm_free(sp);
}

static void test_chunker_equals_open_split(void) {
    rng_state = 5;
    check_chunker("pocket-full/tokenizer.model", 60);
    check_chunker("pocket-tiny/tokenizers/tiny.model", 30);
    check_chunker("pocket-tiny/tokenizers/variant_identity.model", 30);
}

TEST_MAIN(T(test_chunker_equals_open_split), T(test_open_chunks_examples), T(test_open_chunks_full_tokenizer),
          T(test_open_chunks_tiny_tokenizers), T(test_stream_shortcut_loses_nothing))
