/*
 * Streaming API tests (include/ctts.h) on the golden tiny model:
 *  - every golden case streamed (2 threads, pipelined decoder, text fed
 *    word by word, reads of 1..N samples) equals one-shot synthesis on one
 *    thread without pipelining, sample for sample, and the golden audio;
 *  - word-by-word / byte-by-byte feeding equals feeding at once for long
 *    multi-chunk texts (temperature > 0, several chunk sizes), and audio
 *    starts before the end of the text;
 *  - cancel from another thread stops within one frame (ASan: no leak);
 *  - reads with a 1-sample buffer; out-of-order calls; bad arguments;
 *  - timings are filled in consistently.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctts.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"

static char golden_path[512];
static const char *gpath(const char *rel) {
    snprintf(golden_path, sizeof golden_path, "%s/pocket-tiny/%s", test_golden_dir(), rel);
    return golden_path;
}

static ctts_model *load_tiny(int threads) {
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    ctts_model *m = NULL;
    if (ctts_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) != CTTS_OK)
        fprintf(stderr, "    load: %s\n", err);
    return m;
}

static ctts_voice *load_voice(ctts_model *m, const char *rel) {
    char err[512];
    ctts_voice *v = NULL;
    if (rel && ctts_voice_load(m, gpath(rel), &v, err, sizeof err) != CTTS_OK)
        fprintf(stderr, "    voice: %s\n", err);
    return v;
}

typedef struct {
    float *pcm;
    size_t n, cap;
} audio_buf;

static int ab_reserve(audio_buf *a, size_t extra) {
    if (a->n + extra <= a->cap) return 1;
    size_t cap = a->cap ? a->cap : 1 << 16;
    while (cap < a->n + extra) cap *= 2;
    float *p = realloc(a->pcm, cap * sizeof *p);
    if (!p) return 0;
    a->pcm = p;
    a->cap = cap;
    return 1;
}

/* Reads until DONE (at_end) or until a read gives 0 samples (before the end).
 * read_cap cycles through 1..max_cap when max_cap > 1 to vary the buffer. */
static ctts_status drain(ctts_session *s, audio_buf *a, size_t max_cap, int at_end) {
    size_t k = 0;
    for (;;) {
        size_t cap = max_cap <= 1 ? 1 : 1 + (k++ * 7919) % max_cap;
        if (!ab_reserve(a, cap)) return CTTS_E_OOM;
        size_t got = 0;
        ctts_status st = ctts_stream_read(s, a->pcm + a->n, cap, &got);
        a->n += got;
        if (st != CTTS_OK) return st;
        if (got == 0 && !at_end) return CTTS_OK;
    }
}

/* Streams text in pieces: mode 0 = all at once, 1 = word by word (each
 * piece ends after a space), 2 = byte by byte. Reads after every piece.
 * *early gets the samples read before end_text. */
static ctts_status stream_text(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p,
                               const char *text, int mode, size_t max_cap, audio_buf *a,
                               size_t *early) {
    ctts_status st = ctts_stream_begin(s, v, p);
    size_t len = strlen(text), i = 0;
    char piece[4096];
    while (st == CTTS_OK && i < len) {
        size_t j = i + 1;
        if (mode == 0) j = len;
        else if (mode == 1) {
            while (j < len && text[j - 1] != ' ') j++;
        }
        if (j - i >= sizeof piece) j = i + sizeof piece - 1;
        memcpy(piece, text + i, j - i);
        piece[j - i] = 0;
        st = ctts_stream_feed_text(s, piece);
        if (st == CTTS_OK) st = drain(s, a, max_cap, 0);
        i = j;
    }
    if (early) *early = a->n;
    if (st == CTTS_OK) st = ctts_stream_end_text(s);
    if (st == CTTS_OK) st = drain(s, a, max_cap, 1);
    return st;
}

static const char *voice_file(const char *voice) {
    if (!strcmp(voice, "wav22") || !strcmp(voice, "state22"))
        return "voice/voice_22k_state.safetensors";
    if (!strcmp(voice, "wav24")) return "voice/voice_24k_state.safetensors";
    return NULL;
}

static double max_abs_diff(const float *a, const void *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        float bi;
        memcpy(&bi, (const char *)b + i * sizeof bi, sizeof bi);
        double d = (double)a[i] - (double)bi;
        d = d < 0 ? -d : d;
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Every golden case: streamed == one-shot == golden audio. */
static void test_golden_cases_streamed_equal_one_shot(void) {
    char err[512];
    json_value *man = json_parse_file(gpath("manifest.json"), err, sizeof err);
    REQUIRE(man);
    ctts_model *m1 = load_tiny(1), *m2 = load_tiny(2);
    ctts_session *s1 = NULL, *s2 = NULL;
    if (m1) ctts_session_new(m1, &s1);
    if (m2) ctts_session_new(m2, &s2);
    if (!s1 || !s2) {
        TEST_FAIL_AT("model or session");
        goto out;
    }
    const json_value *cases = json_get(man, "cases");
    CHECK_EQ_INT(cases->length, 8);
    for (size_t c = 0; c < cases->length; c++) {
        const json_value *cs = json_at(cases, c);
        const char *id = json_get(cs, "id")->string;
        const char *text = json_get(cs, "text")->string;
        const json_value *jv = json_get(cs, "voice");
        const char *vf = voice_file(jv && jv->type == JSON_STRING ? jv->string : "none");
        ctts_voice *v1 = load_voice(m1, vf), *v2 = load_voice(m2, vf);
        ctts_gen_params p = ctts_gen_default_params(m1);
        p.temperature = 0;
        p.lsd_steps = (int)json_get(cs, "lsd_decode_steps")->integer;
        p.eos_threshold = (float)json_get(cs, "eos_threshold")->number;
        const json_value *fae = json_get(cs, "frames_after_eos_arg");
        p.frames_after_eos = fae->type == JSON_NULL ? -1 : (int)fae->integer;
        /* reference: one-shot, one thread, no pipeline */
        ctts_gen_params pr = p;
        pr.pipeline = 0;
        float *ref = NULL;
        size_t nref = 0;
        if (ctts_synthesize(s1, text, v1, &pr, &ref, &nref) != CTTS_OK) {
            TEST_FAIL_AT("%s: one-shot: %s", id, ctts_session_error(s1));
        } else {
            CHECK_EQ_INT(nref, json_get(cs, "total_samples")->integer);
            char rel[256];
            snprintf(rel, sizeof rel, "cases/%s.safetensors", id);
            st_file *g = NULL;
            if (st_open(gpath(rel), &g, err, sizeof err) == CTTS_OK) {
                const ctts_tensor *ga = st_find(g, "audio");
                if (ga && (size_t)ctts_tensor_numel(ga) == nref && max_abs_diff(ref, ga->data, nref) > 1e-3)
                    TEST_FAIL_AT("%s: audio differs from the golden audio", id);
                st_close(g);
            }
            /* streamed: pipelined on two threads, word by word, varying reads */
            for (int mode = 0; mode < 3; mode++) {
                audio_buf a = {0};
                p.pipeline = 1;
                ctts_status st = stream_text(s2, v2, &p, text, mode, mode == 2 ? 1 : 3000, &a, NULL);
                if (st != CTTS_DONE) TEST_FAIL_AT("%s mode %d: %s", id, mode, ctts_session_error(s2));
                else if (a.n != nref || memcmp(a.pcm, ref, nref * sizeof *ref) != 0)
                    TEST_FAIL_AT("%s mode %d: streamed audio (%zu samples) != one-shot (%zu)", id,
                                 mode, a.n, nref);
                free(a.pcm);
            }
        }
        ctts_pcm_free(ref);
        ctts_voice_free(v1);
        ctts_voice_free(v2);
    }
out:
    ctts_session_free(s1);
    ctts_session_free(s2);
    ctts_model_free(m1);
    ctts_model_free(m2);
    json_free(man);
}

static const char *long_text =
    "Streaming speech should start early. This paragraph has many sentences, some short, "
    "some long; and a few clauses: enough to make several chunks. Does it work? It should! "
    "The very long sentence that follows keeps going without a single stop for quite a while "
    "so that the chunker has to cut it at its commas, here, and there, and also over here, "
    "until it finally ends. Short one. Another short one.\nA new line starts here... and "
    "the end comes now.";

/* Word-by-word and byte-by-byte feeding give the one-shot audio; audio starts early. */
static void test_incremental_text_equals_all_at_once(void) {
    ctts_model *m = load_tiny(2);
    REQUIRE(m);
    ctts_voice *v = load_voice(m, "voice/voice_22k_state.safetensors");
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    static const int max_tokens[] = {6, 15, 50};
    for (int k = 0; k < 3; k++) {
        ctts_gen_params p = ctts_gen_default_params(m);
        p.seed = 7 + (uint64_t)k;
        p.temperature = 0.7f;
        p.max_frames = 4; /* short chunks keep the test fast */
        p.max_tokens_per_chunk = max_tokens[k];
        float *ref = NULL;
        size_t nref = 0;
        REQUIRE(ctts_synthesize(s, long_text, v, &p, &ref, &nref) == CTTS_OK);
        CHECK(nref > 0);
        for (int mode = 1; mode < 3; mode++) {
            for (int pipe = 0; pipe < 2; pipe++) {
                audio_buf a = {0};
                size_t early = 0;
                p.pipeline = pipe;
                ctts_status st = stream_text(s, v, &p, long_text, mode, 5000, &a, &early);
                CHECK_EQ_INT(st, CTTS_DONE);
                CHECK_EQ_INT(a.n, nref);
                if (a.n == nref) CHECK(memcmp(a.pcm, ref, nref * sizeof *ref) == 0);
                /* several chunks: the first ones are spoken before the text ends */
                CHECK(early > 0);
                free(a.pcm);
            }
        }
        ctts_pcm_free(ref);
    }
    ctts_session_free(s);
    ctts_voice_free(v);
    ctts_model_free(m);
}

/* Before end_text a read gives 0 samples when no chunk is final yet. */
static void test_read_before_end_waits_for_text(void) {
    ctts_model *m = load_tiny(1);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.max_frames = 3;
    float buf[4096];
    size_t got = 99;
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    CHECK_EQ_INT(ctts_stream_read(s, buf, 4096, &got), CTTS_OK);
    CHECK_EQ_INT(got, 0);
    REQUIRE(ctts_stream_feed_text(s, "Hello world. ") == CTTS_OK);
    got = 99;
    CHECK_EQ_INT(ctts_stream_read(s, buf, 4096, &got), CTTS_OK);
    CHECK_EQ_INT(got, 0); /* the next sentence may still join this chunk */
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    CHECK_EQ_INT(ctts_stream_read(s, buf, 4096, &got), CTTS_OK);
    CHECK(got > 0);
    ctts_session_free(s);
    ctts_model_free(m);
}

/* Reads of one sample give the same audio as one-shot. */
static void test_one_sample_reads(void) {
    ctts_model *m = load_tiny(2);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.seed = 3;
    p.max_frames = 5;
    float *ref = NULL;
    size_t nref = 0;
    REQUIRE(ctts_synthesize(s, "One sample at a time, please.", NULL, &p, &ref, &nref) == CTTS_OK);
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    REQUIRE(ctts_stream_feed_text(s, "One sample at a time, please.") == CTTS_OK);
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    size_t n = 0, bad = 0;
    ctts_status st;
    float x;
    size_t got;
    while ((st = ctts_stream_read(s, &x, 1, &got)) == CTTS_OK) {
        if (got != 1 || n >= nref || x != ref[n]) bad++;
        n += got;
    }
    CHECK_EQ_INT(st, CTTS_DONE);
    CHECK_EQ_INT(n, nref);
    CHECK_EQ_INT(bad, 0);
    /* DONE is sticky */
    CHECK_EQ_INT(ctts_stream_read(s, &x, 1, &got), CTTS_DONE);
    CHECK_EQ_INT(got, 0);
    ctts_pcm_free(ref);
    ctts_session_free(s);
    ctts_model_free(m);
}

typedef struct {
    ctts_session *s;
    atomic_int frames;  /* frames (1920-sample reads) completed */
    atomic_int at_cancel;
    ctts_status final;
    size_t samples;
} reader_ctx;

static void *reader_main(void *arg) {
    reader_ctx *r = arg;
    static float buf[1920];
    size_t got;
    ctts_status st;
    while ((st = ctts_stream_read(r->s, buf, 1920, &got)) == CTTS_OK) {
        r->samples += got;
        atomic_fetch_add(&r->frames, 1);
    }
    r->final = st;
    return NULL;
}

/* Cancel from another thread: the reader stops within one frame of it. */
static void test_cancel_from_other_thread(void) {
    for (int pipe = 0; pipe < 2; pipe++) {
        ctts_model *m = load_tiny(2);
        REQUIRE(m);
        ctts_session *s = NULL;
        REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
        ctts_gen_params p = ctts_gen_default_params(m);
        p.eos_threshold = 1e9f; /* never ends by itself */
        p.max_frames = 100000;
        p.pipeline = pipe;
        REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
        REQUIRE(ctts_stream_feed_text(s, "This would go on for a very long time.") == CTTS_OK);
        REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
        reader_ctx r = {.s = s};
        atomic_init(&r.frames, 0);
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, reader_main, &r) == 0);
        while (atomic_load(&r.frames) < 3) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        ctts_stream_cancel(s);
        int at_cancel = atomic_load(&r.frames);
        pthread_join(th, NULL);
        CHECK_EQ_INT(r.final, CTTS_E_CANCELLED);
        /* the frame being computed when cancel came may still be handed out */
        CHECK(atomic_load(&r.frames) <= at_cancel + 1);
        CHECK_STR_CONTAINS(ctts_session_error(s), "cancel");
        float x;
        size_t got;
        CHECK_EQ_INT(ctts_stream_read(s, &x, 1, &got), CTTS_E_STATE);
        /* the session is usable again after a new begin */
        p.eos_threshold = -4.0f;
        p.max_frames = 2;
        float *pcm = NULL;
        size_t n = 0;
        CHECK_EQ_INT(ctts_synthesize(s, "Again.", NULL, &p, &pcm, &n), CTTS_OK);
        CHECK(n > 0);
        ctts_pcm_free(pcm);
        ctts_session_free(s);
        ctts_model_free(m);
    }
}

/* Cancel before the first read, and freeing a session mid-stream. */
static void test_cancel_and_free_mid_stream(void) {
    ctts_model *m = load_tiny(2);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.eos_threshold = 1e9f;
    p.max_frames = 1000;
    float buf[1920];
    size_t got;
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    REQUIRE(ctts_stream_feed_text(s, "Cancelled before it starts.") == CTTS_OK);
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    ctts_stream_cancel(s);
    CHECK_EQ_INT(ctts_stream_read(s, buf, 1920, &got), CTTS_E_CANCELLED);
    CHECK_EQ_INT(got, 0);
    /* a frame in flight on the worker when the session is freed */
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    REQUIRE(ctts_stream_feed_text(s, "Freed while the decoder works.") == CTTS_OK);
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(ctts_stream_read(s, buf, 1920, &got), CTTS_OK);
    ctts_session_free(s);
    ctts_model_free(m);
}

static void test_out_of_order_and_bad_args(void) {
    ctts_model *m = load_tiny(1);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    float buf[16];
    size_t got = 5;
    CHECK_EQ_INT(ctts_stream_read(s, buf, 16, &got), CTTS_E_STATE);
    CHECK_EQ_INT(got, 0);
    CHECK_STR_CONTAINS(ctts_session_error(s), "begin");
    CHECK_EQ_INT(ctts_stream_feed_text(s, "x"), CTTS_E_STATE);
    CHECK_EQ_INT(ctts_stream_end_text(s), CTTS_E_STATE);
    CHECK_EQ_INT(ctts_stream_begin(NULL, NULL, NULL), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(ctts_stream_feed_text(NULL, "x"), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(ctts_stream_end_text(NULL), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(ctts_stream_read(NULL, buf, 16, &got), CTTS_E_INVALID_ARG);
    ctts_stream_cancel(NULL);

    ctts_gen_params p = ctts_gen_default_params(m);
    p.max_frames = 2;
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    CHECK_EQ_INT(ctts_stream_feed_text(s, NULL), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(ctts_stream_read(s, NULL, 16, &got), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(ctts_stream_read(s, buf, 16, NULL), CTTS_E_INVALID_ARG);
    REQUIRE(ctts_stream_feed_text(s, "Order matters.") == CTTS_OK);
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    CHECK_EQ_INT(ctts_stream_end_text(s), CTTS_E_STATE);
    CHECK_STR_CONTAINS(ctts_session_error(s), "twice");
    CHECK_EQ_INT(ctts_stream_feed_text(s, "more"), CTTS_E_STATE);
    CHECK_STR_CONTAINS(ctts_session_error(s), "after end_text");
    CHECK_EQ_INT(ctts_stream_read(s, buf, 0, &got), CTTS_E_INVALID_ARG);
    ctts_status st;
    while ((st = ctts_stream_read(s, buf, 16, &got)) == CTTS_OK) {}
    CHECK_EQ_INT(st, CTTS_DONE);

    /* bad parameters are reported by begin */
    p.pipeline = 7;
    CHECK_EQ_INT(ctts_stream_begin(s, NULL, &p), CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "pipeline");
    CHECK_EQ_INT(ctts_stream_read(s, buf, 16, &got), CTTS_E_STATE);
    p.pipeline = -1;
    p.lsd_steps = 0;
    CHECK_EQ_INT(ctts_stream_begin(s, NULL, &p), CTTS_E_INVALID_ARG);
    p.lsd_steps = 1;

    /* text errors: invalid UTF-8 (found while streaming or at the end), empty text */
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    st = ctts_stream_feed_text(s, "Bad \xff bytes here. And more words follow ");
    if (st == CTTS_OK) st = ctts_stream_end_text(s);
    CHECK_EQ_INT(st, CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "UTF-8");
    CHECK_EQ_INT(ctts_stream_read(s, buf, 16, &got), CTTS_E_STATE);
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    REQUIRE(ctts_stream_feed_text(s, "   \n ") == CTTS_OK);
    CHECK_EQ_INT(ctts_stream_end_text(s), CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "empty");

    /* a voice of another model */
    ctts_model *m2 = load_tiny(1);
    ctts_voice *v2 = m2 ? load_voice(m2, "voice/voice_22k_state.safetensors") : NULL;
    if (v2) {
        CHECK_EQ_INT(ctts_stream_begin(s, v2, &p), CTTS_E_INVALID_ARG);
        CHECK_STR_CONTAINS(ctts_session_error(s), "another model");
    }
    ctts_voice_free(v2);
    ctts_model_free(m2);
    ctts_session_free(s);
    ctts_model_free(m);
}

static void test_timings(void) {
    ctts_model *m = load_tiny(2);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.max_frames = 6;
    float *pcm = NULL;
    size_t n = 0;
    REQUIRE(ctts_synthesize(s, "Timings, please. Two chunks maybe.", NULL, &p, &pcm, &n) == CTTS_OK);
    const ctts_timings *t = ctts_session_timings(s);
    REQUIRE(t);
    CHECK(t->frames > 0);
    CHECK_EQ_INT(t->samples, n);
    CHECK_EQ_INT(t->frames * 1920, n);
    CHECK(t->first_audio_ms > 0 && t->first_audio_ms <= t->total_ms);
    CHECK(t->first_prefill_ms > 0 && t->first_mimi_ms > 0);
    CHECK(t->first_text_ms >= 0);
    CHECK(t->first_text_ms + t->first_prefill_ms + t->first_mimi_ms <= t->first_audio_ms);
    CHECK(t->prefill_ms >= t->first_prefill_ms && t->flowlm_ms > 0);
    CHECK(t->mimi_ms >= t->first_mimi_ms);
    CHECK(t->rtf > 0);
    /* a new stream starts from zero */
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    CHECK_EQ_INT(ctts_session_timings(s)->frames, 0);
    CHECK_EQ_INT(ctts_session_timings(s)->samples, 0);
    ctts_pcm_free(pcm);
    ctts_session_free(s);
    ctts_model_free(m);
}

/* pipeline = auto measures both modes and switches between them mid-stream
 * (and across chunks): still the sequential audio, sample for sample. */
static void test_auto_pipeline_switching(void) {
    ctts_model *m = load_tiny(2);
    REQUIRE(m);
    ctts_session *s = NULL;
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.seed = 11;
    p.eos_threshold = 1e9f;
    p.max_frames = 90;
    p.max_tokens_per_chunk = 8;
    const char *t = "First part of it, then more. And the second one follows here. Last bit.";
    p.pipeline = 0;
    float *ref = NULL;
    size_t nref = 0;
    REQUIRE(ctts_synthesize(s, t, NULL, &p, &ref, &nref) == CTTS_OK);
    CHECK(nref > 2 * 64 * 1920); /* more than two AUTO periods */
    p.pipeline = -1;
    for (int run = 0; run < 2; run++) { /* the second run starts with the modes measured */
        audio_buf a = {0};
        CHECK_EQ_INT(stream_text(s, NULL, &p, t, 1, 1920, &a, NULL), CTTS_DONE);
        CHECK_EQ_INT(a.n, nref);
        if (a.n == nref) CHECK(memcmp(a.pcm, ref, nref * sizeof *ref) == 0);
        free(a.pcm);
    }
    ctts_pcm_free(ref);
    ctts_session_free(s);
    ctts_model_free(m);
}

TEST_MAIN(T(test_auto_pipeline_switching), T(test_golden_cases_streamed_equal_one_shot), T(test_incremental_text_equals_all_at_once),
          T(test_read_before_end_waits_for_text), T(test_one_sample_reads),
          T(test_cancel_from_other_thread), T(test_cancel_and_free_mid_stream),
          T(test_out_of_order_and_bad_args), T(test_timings))
