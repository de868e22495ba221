/*
 * Qwen2 byte-level BPE tests: the official processor's golden (103 strings:
 * ids, decode with and without special tokens, pre-token pieces with the
 * Qwen2 regex and with the fix_mistral_regex one), NFC normalisation against
 * values computed with Python's unicodedata, and hostile tokenizer folders
 * that must fail with a message naming the file.
 * Golden data: $CTTS_GOLDEN or ../shared/golden (run from the repo root).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/json.h"
#include "text/bpe.h"
#include "text/nfc.h"

static const char *tok_dir(char *buf, size_t len) {
    snprintf(buf, len, "%s/qwen3tts-tiny/model", test_golden_dir());
    return buf;
}

static json_value *load_golden(void) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/qwen3tts-tiny/tokenizer_golden.json", test_golden_dir());
    json_value *v = json_parse_file(path, err, sizeof err);
    if (!v) fprintf(stderr, "    %s\n", err);
    return v;
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

static void test_golden_ids(void) {
    char dir[1024], err[512];
    json_value *g = load_golden();
    REQUIRE(g);
    bpe_tokenizer *t = NULL;
    ctts_status st = bpe_load(tok_dir(dir, sizeof dir), BPE_REGEX_QWEN2, &t, err, sizeof err);
    if (st) fprintf(stderr, "    %s\n", err);
    REQUIRE(st == CTTS_OK);
    CHECK_EQ_INT(bpe_vocab_size(t), 151676);
    CHECK_EQ_INT(bpe_token_id(t, "<|im_start|>"), 151644);
    CHECK_EQ_INT(bpe_token_id(t, "<tts_text_eod>"), 151673);
    CHECK(bpe_is_added(t, 151671));
    CHECK(!bpe_is_added(t, 100));
    const json_value *cases = json_get(g, "cases");
    REQUIRE(cases && cases->length == 103);
    int bad = 0;
    for (size_t i = 0; i < cases->length; i++) {
        const json_value *c = &cases->items[i];
        const json_value *text = json_get(c, "text");
        int32_t *ids = NULL;
        size_t n = 0;
        st = bpe_encode(t, text->string, text->length, &ids, &n, err, sizeof err);
        if (st != CTTS_OK || !ids_match(json_get(c, "ids"), ids, n)) {
            if (bad++ < 5) TEST_FAIL_AT("case %zu '%s': ids differ (%zu ids)", i, text->string, n);
        }
        char *dec = NULL;
        size_t dl = 0;
        const json_value *want = json_get(c, "ids");
        int32_t *gid = malloc((want->length + 1) * sizeof *gid);
        for (size_t k = 0; k < want->length; k++) gid[k] = (int32_t)want->items[k].integer;
        REQUIRE(bpe_decode(t, gid, want->length, 0, &dec, &dl, err, sizeof err) == CTTS_OK);
        if (!str_eq(json_get(c, "decoded"), dec, dl) && bad++ < 5)
            TEST_FAIL_AT("case %zu: decode differs", i);
        free(dec);
        REQUIRE(bpe_decode(t, gid, want->length, 1, &dec, &dl, err, sizeof err) == CTTS_OK);
        if (!str_eq(json_get(c, "decoded_skip_special"), dec, dl) && bad++ < 5)
            TEST_FAIL_AT("case %zu: decode(skip_special) differs", i);
        free(dec);
        free(gid);
        free(ids);
    }
    CHECK_EQ_INT(bad, 0);
    bpe_free(t);
    json_free(g);
}

typedef struct {
    const json_value *want; /* array of piece strings */
    size_t i;
    int ok;
} piece_check;

static void on_piece(const char *p, size_t n, void *user) {
    piece_check *c = user;
    if (c->i >= c->want->length || !str_eq(&c->want->items[c->i], p, n)) c->ok = 0;
    c->i++;
}

/* Pre-tokens: segments between added tokens, each split by the regex. */
static int check_pretokens(const bpe_tokenizer *t, const json_value *segs) {
    char err[256];
    for (size_t s = 0; s < segs->length; s++) {
        const json_value *seg = &segs->items[s];
        if (seg->type == JSON_STRING) continue; /* an added token */
        /* Re-join the pieces: that is the segment's NFC text. */
        size_t total = 0;
        for (size_t k = 0; k < seg->length; k++) total += seg->items[k].length;
        char *text = malloc(total + 1);
        size_t m = 0;
        for (size_t k = 0; k < seg->length; k++) {
            memcpy(text + m, seg->items[k].string, seg->items[k].length);
            m += seg->items[k].length;
        }
        piece_check pc = {.want = seg, .ok = 1};
        ctts_status st = bpe_pretokenize(t, text, m, on_piece, &pc, err, sizeof err);
        free(text);
        if (st != CTTS_OK || !pc.ok || pc.i != seg->length) return 0;
    }
    return 1;
}

static void test_golden_pretokens(void) {
    char dir[1024], err[512];
    json_value *g = load_golden();
    REQUIRE(g);
    bpe_tokenizer *q = NULL, *mi = NULL;
    REQUIRE(bpe_load(tok_dir(dir, sizeof dir), BPE_REGEX_QWEN2, &q, err, sizeof err) == CTTS_OK);
    REQUIRE(bpe_load(dir, BPE_REGEX_FIX_MISTRAL, &mi, err, sizeof err) == CTTS_OK);
    const json_value *cases = json_get(g, "cases");
    int n_mistral = 0;
    for (size_t i = 0; i < cases->length; i++) {
        const json_value *c = &cases->items[i];
        const json_value *pre = json_get(c, "pretokens");
        const json_value *pm = json_get(c, "pretokens_fix_mistral_regex");
        if (!check_pretokens(q, pre))
            TEST_FAIL_AT("case %zu '%s': Qwen2 pre-tokens differ", i,
                         json_get(c, "text")->string);
        if (!check_pretokens(mi, pm ? pm : pre))
            TEST_FAIL_AT("case %zu '%s': fix_mistral_regex pre-tokens differ", i,
                         json_get(c, "text")->string);
        n_mistral += pm != NULL;
    }
    CHECK(n_mistral >= 5); /* the golden has cases where the two regexes differ */
    bpe_free(q);
    bpe_free(mi);
    json_free(g);
}

static void check_nfc(const char *in, const char *want) {
    size_t n = 0;
    char *o = nfc_normalize(in, strlen(in), &n);
    if (!o || n != strlen(want) || memcmp(o, want, n) != 0)
        TEST_FAIL_AT("NFC('%s') = '%s', expected '%s'", in, o ? o : "(null)", want);
    free(o);
}

/* Expected values from Python 3.11 unicodedata.normalize("NFC", ...). */
static void test_nfc(void) {
    check_nfc("", "");
    check_nfc("plain ascii", "plain ascii");
    check_nfc("e\xCC\x81", "\xC3\xA9");                           /* e + acute -> é */
    check_nfc("a\xCC\x87\xCC\xA3", "\xE1\xBA\xA1\xCC\x87");        /* a dot-above dot-below -> ạ̇ */
    check_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"); /* jamo -> 각 */
    check_nfc("\xEA\xB0\x81", "\xEA\xB0\x81");
    check_nfc("\xCC\x81" "e", "\xCC\x81" "e");                     /* leading mark stays */
    check_nfc("\xE2\x84\xAB", "\xC3\x85");                         /* Angstrom sign -> Å */
    check_nfc("\xEF\xAC\x81", "\xEF\xAC\x81");                     /* ﬁ: compatibility only */
    check_nfc("\xE0\xA4\x95\xE0\xA4\xBC", "\xE0\xA4\x95\xE0\xA4\xBC"); /* U+0958 is excluded */
    check_nfc("\xE0\xA4\xA8\xE0\xA4\xBC", "\xE0\xA4\xA9");                 /* U+0929 is not */
    check_nfc("U\xCC\x88\xCC\x84", "\xC7\x95");                    /* Ü + macron -> Ǖ */
    check_nfc("x\0y", "x");                                        /* strlen stops at NUL */
    size_t n = 0;
    char *o = nfc_normalize("x\0y", 3, &n);
    CHECK(o && n == 3 && o[1] == 0);
    free(o);
    CHECK(nfc_normalize("\xC3\x28", 2, &n) == NULL); /* invalid UTF-8 */
    CHECK_EQ_INT(nfc_ccc(0x301), 230);
    CHECK_EQ_INT(nfc_ccc('a'), 0);
}

static void test_encode_edges(void) {
    char dir[1024], err[512];
    bpe_tokenizer *t = NULL;
    REQUIRE(bpe_load(tok_dir(dir, sizeof dir), BPE_REGEX_QWEN2, &t, err, sizeof err) == CTTS_OK);
    int32_t *ids = NULL;
    size_t n = 7;
    CHECK(bpe_encode(t, "\xFF", 1, &ids, &n, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "UTF-8");
    CHECK(ids == NULL && n == 0);
    CHECK(bpe_encode(t, "", 0, &ids, &n, err, sizeof err) == CTTS_OK && n == 0);
    free(ids);
    /* A long run of CJK without spaces is one pre-token: must stay fast and round-trip. */
    size_t len = 3 * 20000;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i += 3) memcpy(big + i, i % 2 ? "\xE4\xBD\xA0" : "\xE5\xA5\xBD", 3);
    big[len] = 0;
    REQUIRE(bpe_encode(t, big, len, &ids, &n, err, sizeof err) == CTTS_OK);
    CHECK(n > 0 && n <= len);
    char *dec = NULL;
    size_t dl = 0;
    REQUIRE(bpe_decode(t, ids, n, 0, &dec, &dl, err, sizeof err) == CTTS_OK);
    CHECK(dl == len && memcmp(dec, big, len) == 0);
    free(dec);
    free(ids);
    free(big);
    /* Decoding a lone continuation byte gives U+FFFD. */
    /* Byte 0x80 is spelled with code point 256 + 34 = U+0122. */
    int32_t b80 = bpe_token_id(t, "\xC4\xA2");
    REQUIRE(b80 >= 0);
    REQUIRE(bpe_decode(t, &b80, 1, 0, &dec, &dl, err, sizeof err) == CTTS_OK);
    CHECK(dl == 3 && memcmp(dec, "\xEF\xBF\xBD", 3) == 0);
    free(dec);
    int32_t badid = 999999;
    CHECK(bpe_decode(t, &badid, 1, 0, &dec, &dl, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(bpe_token_str(t, 151644) && strcmp(bpe_token_str(t, 151644), "<|im_start|>") == 0);
    CHECK(bpe_token_str(t, -1) == NULL);
    bpe_free(t);
}

/* ---- hostile folders ---- */

static void write_file(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A 256-byte vocabulary (every byte spelled through the GPT-2 map) plus extras. */
static void write_byte_vocab(const char *dir, const char *extra) {
    char p[1024];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fputc('{', f);
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int ok = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = ok ? (unsigned)b : 256u + (unsigned)n++;
        char s[8];
        if (cp == '"' || cp == '\\') snprintf(s, sizeof s, "\\%c", (char)cp);
        else if (cp < 0x80) snprintf(s, sizeof s, "%c", (char)cp);
        else snprintf(s, sizeof s, "%c%c", (char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)));
        fprintf(f, "%s\"%s\":%d", b ? "," : "", s, b);
    }
    fprintf(f, "%s}", extra);
    fclose(f);
}

static int fails_with(const char *dir, ctts_status want, const char *needle) {
    char err[512] = "";
    bpe_tokenizer *t = NULL;
    ctts_status st = bpe_load(dir, BPE_REGEX_QWEN2, &t, err, sizeof err);
    bpe_free(t);
    if (st != want || !strstr(err, needle)) {
        fprintf(stderr, "    got %d '%s', want %d with '%s'\n", st, err, want, needle);
        return 0;
    }
    return t == NULL;
}

static void test_bad_folders(void) {
    char dir[] = "/tmp/ctts_bpe_XXXXXX";
    REQUIRE(mkdtemp(dir));
    CHECK(fails_with(dir, CTTS_E_IO, "vocab.json: cannot open"));
    write_file(dir, "merges.txt", "#version: 0.2\n");
    write_file(dir, "vocab.json", "{\"a\":0,");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "vocab.json"));
    write_file(dir, "vocab.json", "{\"a\":0}");
    write_file(dir, "merges.txt", "#version: 0.2\n");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "has no token"));
    write_byte_vocab(dir, ",\"ab\":256");
    write_file(dir, "merges.txt", "#version: 0.2\na b\n");
    bpe_tokenizer *t = NULL;
    char err[512];
    REQUIRE(bpe_load(dir, BPE_REGEX_QWEN2, &t, err, sizeof err) == CTTS_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    REQUIRE(bpe_encode(t, "abab", 4, &ids, &n, err, sizeof err) == CTTS_OK);
    CHECK(n == 2 && ids[0] == 256 && ids[1] == 256);
    free(ids);
    bpe_free(t);
    write_file(dir, "merges.txt", "#version: 0.2\na c\n");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "merges.txt: line 2"));
    write_file(dir, "merges.txt", "a b c\n");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "two tokens"));
    write_file(dir, "merges.txt", "a b\n");
    write_byte_vocab(dir, ",\"ab\":255");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "id 255 is used"));
    write_byte_vocab(dir, ",\"ab\":256");
    write_file(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\":{\"300\":{\"content\":\"<x>\",\"lstrip\":true}}}");
    CHECK(fails_with(dir, CTTS_E_UNSUPPORTED, "lstrip"));
    write_file(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\":{\"abc\":{\"content\":\"<x>\"}}}");
    CHECK(fails_with(dir, CTTS_E_FORMAT, "tokenizer_config.json"));
    write_file(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\":{\"300\":{\"content\":\"<x>\",\"special\":true},"
               "\"301\":{\"content\":\"<xy>\",\"special\":false}}}");
    REQUIRE(bpe_load(dir, BPE_REGEX_QWEN2, &t, err, sizeof err) == CTTS_OK);
    REQUIRE(bpe_encode(t, "a<xy><x>b", 9, &ids, &n, err, sizeof err) == CTTS_OK);
    CHECK(n == 4 && ids[0] == 'a' && ids[1] == 301 && ids[2] == 300 && ids[3] == 'b');
    char *dec = NULL;
    REQUIRE(bpe_decode(t, ids, n, 1, &dec, NULL, err, sizeof err) == CTTS_OK);
    CHECK(strcmp(dec, "a<xy>b") == 0);
    free(dec);
    free(ids);
    bpe_free(t);
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Feeds text in pieces (sizes from an LCG; step 1 = byte by byte) through
 * bpe_encode_stable and returns the committed ids followed by the final
 * call's; *max_pending: the most bytes left uncommitted after a feed. */
static int32_t *encode_in_pieces(const bpe_tokenizer *t, const char *text, size_t len,
                                 uint32_t seed, size_t *n_out, size_t *max_pending, size_t *cuts,
                                 size_t *n_cuts) {
    char *pend = malloc(len + 1), err[256];
    int32_t *all = NULL;
    size_t np = 0, na = 0, pos = 0, done = 0;
    *n_cuts = 0;
    *max_pending = 0;
    uint32_t r = seed;
    for (int final = 0; final <= 1; final++) {
        while (final || pos < len) {
            size_t k = 0;
            if (!final) {
                r = r * 1664525u + 1013904223u;
                k = seed ? 1 + (r >> 16) % 9 : 1;
                if (k > len - pos) k = len - pos;
                memcpy(pend + np, text + pos, k);
                np += k, pos += k;
            }
            int32_t *ids = NULL;
            size_t n = 0, used = 0;
            ctts_status st = bpe_encode_stable(t, pend, np, final, &ids, &n, &used, err, sizeof err);
            if (st != CTTS_OK || used > np) {
                free(ids);
                free(all);
                free(pend);
                return NULL;
            }
            int32_t *g = realloc(all, (na + n + 1) * sizeof *g);
            if (!g) abort();
            all = g;
            if (n) memcpy(all + na, ids, n * sizeof *ids);
            na += n;
            free(ids);
            memmove(pend, pend + used, np - used);
            np -= used;
            done += used;
            if (used && !final) cuts[(*n_cuts)++] = done;
            if (!final && np > *max_pending) *max_pending = np;
            if (final) break;
        }
    }
    free(pend);
    *n_out = na;
    return all;
}

typedef struct {
    size_t ends[4096], total;
    int n;
} piece_ends;

static void piece_end_cb(const char *piece, size_t n, void *user) {
    (void)piece;
    piece_ends *p = user;
    p->total += n;
    if (p->n < 4096) p->ends[p->n++] = p->total;
}

/* Same ids as the whole text; and where the text is one segment already in
 * NFC, every cut is a pre-token boundary of the whole text (ids alone could
 * hide a moved boundary when both sides happen to tokenize alike). */
static int same_as_whole(const bpe_tokenizer *t, const char *text, size_t len, uint32_t seed,
                         size_t *max_pending) {
    char err[256];
    int32_t *want = NULL, *got;
    size_t nw = 0, ng = 0, n_cuts = 0;
    static size_t cuts[4096];
    if (bpe_encode(t, text, len, &want, &nw, err, sizeof err) != CTTS_OK) return 0;
    got = encode_in_pieces(t, text, len, seed, &ng, max_pending, cuts, &n_cuts);
    int ok = got && ng == nw && (nw == 0 || memcmp(got, want, nw * sizeof *want) == 0);
    size_t nl = 0;
    char *norm = nfc_normalize(text, len, &nl);
    int one_segment = 1;
    for (size_t i = 0; i < nw; i++) one_segment &= !bpe_is_added(t, want[i]);
    if (ok && norm && nl == len && memcmp(norm, text, len) == 0 && one_segment) {
        static piece_ends pe;
        pe.n = 0, pe.total = 0;
        ok = bpe_pretokenize(t, text, len, piece_end_cb, &pe, err, sizeof err) == CTTS_OK;
        for (size_t c = 0, k = 0; ok && c < n_cuts; c++) {
            while (k < (size_t)pe.n && pe.ends[k] < cuts[c]) k++;
            ok = k < (size_t)pe.n && pe.ends[k] == cuts[c];
        }
    }
    free(norm);
    free(want);
    free(got);
    return ok;
}

/* Text arriving in pieces (as an LLM writes it) encodes to the same ids as
 * the whole text, whatever the cuts: the golden strings and cases made to
 * move a pre-token, NFC or an added token across a cut; and the committed
 * part keeps up (only the last word or so waits). */
static void test_encode_stable(void) {
    char dir[1024], err[512];
    json_value *g = load_golden();
    REQUIRE(g);
    bpe_tokenizer *t = NULL;
    REQUIRE(bpe_load(tok_dir(dir, sizeof dir), BPE_REGEX_QWEN2, &t, err, sizeof err) == CTTS_OK);
    const json_value *cases = json_get(g, "cases");
    REQUIRE(cases);
    size_t maxp = 0;
    int bad = 0, runs = 0;
    for (size_t i = 0; i < cases->length; i++) {
        const json_value *text = json_get(&cases->items[i], "text");
        for (uint32_t seed = 0; seed < 4; seed++, runs++)
            if (!same_as_whole(t, text->string, text->length, seed, &maxp) && bad++ < 5)
                TEST_FAIL_AT("golden case %zu seed %u '%s': pieces encode differently", i,
                             (unsigned)seed, text->string);
    }
    static const char *tricky[] = {
        "a \n\nb",          "a\n \nb",        "x   y  \n z",     "it's they'll WE'RE 'l'",
        "cafe\xcc\x81 caf\xc3\xa9!", "e\xcc\x81\xcc\xa3x", "\xe2\x84\xaa" "K Kelvin",
        "=\xcc\xb8 <\xcc\xb8 a=b", "\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8 \xea\xb0\x80",
        "12345 3.14 1,000,000", "Hello!!! ...?? (yes) [no]", "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c",
        "emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x80 ok", "<|im_start|>assistant\nHi <|im_end|> there",
        "a<|im_e b<|im_end|>c<|", "tabs\t\tand\r\nnewlines\r\n\r\n", "   leading and trailing   ",
        "<|im_start|>assistant\n\nnew line first", "<|im_start|>assistant\n hello",
        "a\n \n\n  \nb", "x!\n \n y", "q  \t \n", "\n\n\n", "one two  three   four    .",
    };
    for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++)
        for (uint32_t seed = 0; seed < 16; seed++, runs++)
            if (!same_as_whole(t, tricky[i], strlen(tricky[i]), seed, &maxp) && bad++ < 5)
                TEST_FAIL_AT("'%s' seed %u: pieces encode differently", tricky[i], (unsigned)seed);
    CHECK_EQ_INT(bad, 0);
    /* Progress: fed byte by byte, at most the last word and a space wait. */
    const char *sent = "<|im_start|>assistant\nHello world, this is a test of streaming text.";
    REQUIRE(same_as_whole(t, sent, strlen(sent), 0, &maxp));
    CHECK(maxp <= strlen(" streaming") + 1);
    /* Chinese (no ASCII): commits keep up too. */
    const char *zh = "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82"
                     "\xe4\xbb\x8a\xe5\xa4\xa9\xe5\xa4\xa9\xe6\xb0\x94\xe5\xbe\x88\xe5\xa5\xbd\xe3\x80\x82";
    REQUIRE(same_as_whole(t, zh, strlen(zh), 0, &maxp));
    /* the longest piece (U+3002 and the six letters after it, 21 bytes) and
     * two bytes of the next character */
    CHECK(maxp <= 21 + 2);
    /* The pending part: a split UTF-8 character and a partial added token wait. */
    int32_t *ids = NULL;
    size_t n = 0, used = 0;
    REQUIRE(bpe_encode_stable(t, "ab cd \xe4\xbd", 8, 0, &ids, &n, &used, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT((int)used, 2);
    free(ids);
    REQUIRE(bpe_encode_stable(t, "ab cd <|im_e", 12, 0, &ids, &n, &used, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT((int)used, 2);
    free(ids);
    REQUIRE(bpe_encode_stable(t, "ab cd <|im_end|>", 16, 0, &ids, &n, &used, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT((int)used, 16);
    CHECK(n >= 1 && ids[n - 1] == bpe_token_id(t, "<|im_end|>"));
    free(ids);
    CHECK(bpe_encode_stable(t, "ab \xff cd", 7, 0, &ids, &n, &used, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(bpe_encode_stable(t, "ab \xe4\xbd", 5, 1, &ids, &n, &used, err, sizeof err) == CTTS_E_INVALID_ARG);
    (void)runs;
    bpe_free(t);
    json_free(g);
}

TEST_MAIN(T(test_golden_ids), T(test_golden_pretokens), T(test_nfc), T(test_encode_edges), T(test_encode_stable),
          T(test_bad_folders))
