/*
 * Voice cloning from audio files against the golden tiny model
 * (../shared/golden/pocket-tiny): the resampled 22 kHz prompt (SciPy
 * resample_poly, 1e-6), the Mimi-encoder latents of both golden clips, the
 * cloned voice states against the official exported states (1e-4), audio
 * generated with the cloned voices against the golden cases that used wav22 /
 * wav24 (1e-3, exact frame counts), voice files written by ctts loading back
 * bit-identical, the content-hash cache, content sniffing, the PCM entry
 * point, and every hostile input of the voice-cloning issue through the
 * public API (errors, or accepted like the official code: 10 ms, silence,
 * 10 minutes cut to 30 s).
 */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_read.h"
#include "audio/resample.h"
#include "ctts.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

static char tmpdir[64];

static const char *gpath(const char *rel) {
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
        snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_clone_XXXXXX");
        if (!mkdtemp(tmpdir)) tmpdir[0] = 0;
    }
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* b may be unaligned (golden tensors sit at arbitrary offsets in their files). */
static double max_abs_diff(const float *a, const void *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        float bi;
        memcpy(&bi, (const char *)b + i * sizeof bi, sizeof bi);
        double d = fabs((double)a[i] - (double)bi);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static pocket_model *load_tiny(char *err) {
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    pocket_model *m = NULL;
    if (pocket_model_load(gpath("model/config.yaml"), &mp, &m, err, 512) != CTTS_OK) return NULL;
    return m;
}

/* Max |a - b| over the KV caches of a voice and an exported state file; -1 on shape mismatch. */
static double state_diff(const pocket_voice *v, const char *state_path) {
    char err[512];
    st_file *f = NULL;
    if (st_open(state_path, &f, err, sizeof err) != CTTS_OK) return -1;
    const pocket_flowlm_config *fc = &v->model->cfg.flow;
    int T = pocket_voice_length(v);
    size_t plane = (size_t)T * (size_t)fc->d_model;
    float *kv = malloc(2 * plane * sizeof *kv);
    double worst = 0;
    for (int l = 0; l < fc->num_layers && worst >= 0; l++) {
        char key[96];
        snprintf(key, sizeof key, "transformer.layers.%d.self_attn/cache", l);
        const ctts_tensor *c = st_find(f, key);
        if (!c || c->shape[2] != T || !kv) {
            worst = -1;
            break;
        }
        pocket_flowlm_state_get_layer(v->state, l, kv, kv + plane);
        double d = max_abs_diff(kv, c->data, 2 * plane);
        if (!(d <= worst)) worst = d;
    }
    free(kv);
    st_close(f);
    return worst;
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

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static int write_sf(const char *path, int format, int channels, int rate, const float *x,
                    sf_count_t frames) {
    SF_INFO si = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &si);
    if (!f) return -1;
    sf_count_t w = sf_writef_float(f, x, frames);
    sf_close(f);
    return w == frames ? 0 : -1;
}

/* ---- golden parity ---- */

static void test_resampled_prompt_matches_scipy(void) {
    char err[512];
    audio_clip c;
    REQUIRE(audio_read(gpath("voice/voice_22k.wav"), 30, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.sample_rate, 22050);
    float *y = NULL;
    size_t ny = 0;
    REQUIRE(resample_rate(c.pcm, c.n, 22050, 24000, &y, &ny, err, sizeof err) == CTTS_OK);
    st_file *g = NULL;
    REQUIRE(st_open(gpath("voice/voice_22k_intermediates.safetensors"), &g, err, sizeof err) ==
            CTTS_OK);
    const ctts_tensor *ra = st_find(g, "resampled_audio");
    REQUIRE(ra);
    CHECK_EQ_INT(ny, ra->shape[0]);
    if ((int64_t)ny == ra->shape[0]) {
        double d = max_abs_diff(y, ra->data, ny);
        if (!(d <= 1e-6)) TEST_FAIL_AT("resampled audio differs by %g", d);
    }
    st_close(g);
    free(y);
    audio_clip_free(&c);
}

/* Mimi-encoder latents of both golden clips (22 kHz goes through the resampler). */
static void test_encoder_latents_of_golden_clips(void) {
    char err[512];
    pocket_model *m = load_tiny(err);
    REQUIRE(m);
    const char *wavs[] = {"voice/voice_22k.wav", "voice/voice_24k.wav"};
    const char *ims[] = {"voice/voice_22k_intermediates.safetensors",
                         "voice/voice_24k_intermediates.safetensors"};
    for (int k = 0; k < 2; k++) {
        audio_clip c;
        if (audio_read(gpath(wavs[k]), 30, &c, err, sizeof err) != CTTS_OK) {
            TEST_FAIL_AT("%s", err);
            continue;
        }
        float *x = NULL;
        size_t nx = 0;
        CHECK(resample_rate(c.pcm, c.n, c.sample_rate, 24000, &x, &nx, err, sizeof err) ==
              CTTS_OK);
        float *lat = NULL;
        int T = 0;
        CHECK(pocket_mimi_encode(m->mimi, x, nx, &lat, &T, NULL, NULL, err, sizeof err) ==
              CTTS_OK);
        st_file *g = NULL;
        if (lat && st_open(gpath(ims[k]), &g, err, sizeof err) == CTTS_OK) {
            const ctts_tensor *gl = st_find(g, "latents");
            CHECK(gl && gl->shape[0] == T && gl->shape[1] == 32);
            if (gl && gl->shape[0] == T) {
                double d = max_abs_diff(lat, gl->data, (size_t)T * 32);
                if (!(d <= 1e-4)) TEST_FAIL_AT("%s: latents differ by %g", wavs[k], d);
            }
            st_close(g);
        }
        free(lat);
        free(x);
        audio_clip_free(&c);
    }
    pocket_model_free(m);
}

/* The whole cloning path against the states the official export wrote. */
static void test_cloned_states_match_official(void) {
    char err[512];
    pocket_model *m = load_tiny(err);
    REQUIRE(m);
    const char *wavs[] = {"voice/voice_22k.wav", "voice/voice_24k.wav"};
    const char *states[] = {"voice/voice_22k_state.safetensors",
                            "voice/voice_24k_state.safetensors"};
    for (int k = 0; k < 2; k++) {
        audio_clip c;
        pocket_voice *v = NULL;
        if (audio_read(gpath(wavs[k]), 30, &c, err, sizeof err) != CTTS_OK ||
            pocket_voice_from_pcm(m, c.pcm, c.n, c.sample_rate, &v, err, sizeof err) != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", wavs[k], err);
            audio_clip_free(&c);
            continue;
        }
        CHECK_EQ_INT(pocket_voice_length(v), 83);
        double d = state_diff(v, gpath(states[k]));
        if (!(d >= 0 && d <= 1e-4)) TEST_FAIL_AT("%s: state differs by %g", wavs[k], d);
        pocket_voice_free(v);
        audio_clip_free(&c);
    }
    pocket_model_free(m);
}

/* Golden cases that used wav22 / wav24, generated through the public API
 * from the audio files themselves. */
static void test_generation_with_cloned_voices(void) {
    char err[512];
    json_value *man = json_parse_file(gpath("manifest.json"), err, sizeof err);
    REQUIRE(man);
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    if (ctts_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) != CTTS_OK ||
        ctts_session_new(m, &s) != CTTS_OK) {
        TEST_FAIL_AT("load: %s", err);
        ctts_model_free(m);
        json_free(man);
        return;
    }
    const json_value *cases = json_get(man, "cases");
    int ran = 0;
    for (size_t i = 0; cases && i < cases->length; i++) {
        const json_value *c = json_at(cases, i);
        const char *id = json_get(c, "id")->string;
        if (strcmp(id, "c00_short") != 0 && strcmp(id, "c04_unicode") != 0) continue;
        const char *voice = json_get(c, "voice")->string;
        const char *wav = !strcmp(voice, "wav22") ? "voice/voice_22k.wav" : "voice/voice_24k.wav";
        ctts_voice *v = NULL;
        if (ctts_voice_load(m, gpath(wav), &v, err, sizeof err) != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", id, err);
            continue;
        }
        ctts_gen_params p = ctts_gen_default_params(m);
        p.temperature = 0;
        p.lsd_steps = (int)json_get(c, "lsd_decode_steps")->integer;
        p.eos_threshold = (float)json_get(c, "eos_threshold")->number;
        const json_value *fae = json_get(c, "frames_after_eos_arg");
        p.frames_after_eos = fae->type == JSON_NULL ? -1 : (int)fae->integer;
        float *pcm = NULL;
        size_t n = 0;
        if (ctts_synthesize(s, json_get(c, "text")->string, v, &p, &pcm, &n) != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", id, ctts_session_error(s));
            ctts_voice_free(v);
            continue;
        }
        ran++;
        CHECK_EQ_INT(n, json_get(c, "total_samples")->integer);
        char path[128];
        snprintf(path, sizeof path, "cases/%s.safetensors", id);
        st_file *g = NULL;
        if (st_open(gpath(path), &g, err, sizeof err) == CTTS_OK) {
            const ctts_tensor *ga = st_find(g, "audio");
            if (ga && (size_t)ctts_tensor_numel(ga) == n) {
                double d = max_abs_diff(pcm, ga->data, n);
                if (!(d <= 1e-3)) TEST_FAIL_AT("%s: audio differs by %g", id, d);
            }
            st_close(g);
        } else {
            TEST_FAIL_AT("%s", err);
        }
        ctts_pcm_free(pcm);
        ctts_voice_free(v);
    }
    CHECK_EQ_INT(ran, 2);
    ctts_session_free(s);
    ctts_model_free(m);
    json_free(man);
}

/* ---- voice files ---- */

/* A cloned voice written by ctts loads back bit-identical, and re-saving it
 * gives the same bytes. */
static void test_cloned_voice_file_roundtrip(void) {
    char err[512];
    pocket_model *m = load_tiny(err);
    REQUIRE(m);
    audio_clip c;
    REQUIRE(audio_read(gpath("voice/voice_22k.wav"), 30, &c, err, sizeof err) == CTTS_OK);
    pocket_voice *a = NULL, *b = NULL;
    REQUIRE(pocket_voice_from_pcm(m, c.pcm, c.n, c.sample_rate, &a, err, sizeof err) == CTTS_OK);
    audio_clip_free(&c);
    REQUIRE(pocket_voice_save(a, tmp("a.safetensors"), err, sizeof err) == CTTS_OK);
    REQUIRE(pocket_voice_load(m, tmp("a.safetensors"), &b, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(pocket_voice_length(b), pocket_voice_length(a));
    const pocket_flowlm_config *fc = &m->cfg.flow;
    size_t plane = (size_t)pocket_voice_length(a) * (size_t)fc->d_model;
    float *ka = malloc(2 * plane * 4), *kb = malloc(2 * plane * 4);
    REQUIRE(ka && kb);
    for (int l = 0; l < fc->num_layers; l++) {
        pocket_flowlm_state_get_layer(a->state, l, ka, ka + plane);
        pocket_flowlm_state_get_layer(b->state, l, kb, kb + plane);
        CHECK(memcmp(ka, kb, 2 * plane * 4) == 0);
    }
    free(ka);
    free(kb);
    REQUIRE(pocket_voice_save(b, tmp("b.safetensors"), err, sizeof err) == CTTS_OK);
    CHECK(files_equal(tmp("a.safetensors"), tmp("b.safetensors")));
    /* Same layout as the official file: identical size and tensor names. */
    st_file *x = NULL, *y = NULL;
    REQUIRE(st_open(tmp("a.safetensors"), &x, err, sizeof err) == CTTS_OK);
    REQUIRE(st_open(gpath("voice/voice_22k_state.safetensors"), &y, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(st_count(x), st_count(y));
    for (int i = 0; i < st_count(y); i++) {
        const ctts_tensor *ty = st_tensor(y, i), *tx = st_find(x, ty->name);
        CHECK(tx && tx->nbytes == ty->nbytes && tx->dtype == ty->dtype);
    }
    st_close(x);
    st_close(y);
    remove(tmp("a.safetensors"));
    remove(tmp("b.safetensors"));
    pocket_voice_free(a);
    pocket_voice_free(b);
    pocket_model_free(m);
}

static int count_files(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -1 '%s' 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* The cache: a miss writes one file, a hit reads it (proved by swapping its
 * content), a broken entry is recomputed and rewritten, and the cut length is
 * part of the key. */
static void test_voice_cache(void) {
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    ctts_model *m = NULL;
    REQUIRE(ctts_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) == CTTS_OK);
    const char *dir = tmp("cache/voices");
    char dirbuf[256];
    snprintf(dirbuf, sizeof dirbuf, "%s", dir);
    ctts_voice_params vp = ctts_voice_default_params();
    CHECK(vp.cache_dir == NULL);
    CHECK(vp.max_seconds == 30.0f);
    vp.cache_dir = dirbuf;
    ctts_voice *v = NULL;
    REQUIRE(ctts_voice_load_ex(m, gpath("voice/voice_22k.wav"), &vp, &v, err, sizeof err) ==
            CTTS_OK);
    CHECK_EQ_INT(count_files(dirbuf), 1);
    REQUIRE(ctts_voice_save(v, tmp("first.safetensors"), err, sizeof err) == CTTS_OK);
    ctts_voice_free(v);
    /* The entry is named <sha256 of the file>-<key>.safetensors. */
    char entry[512];
    snprintf(entry, sizeof entry, "%s/fe37090ad0a4fb0450450a29a8208e6bfdac7fc71caf33dc12a25068d96da32d-",
             dirbuf);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s*.safetensors 2>/dev/null", entry);
    FILE *p = popen(cmd, "r");
    char found[512] = "";
    if (p) {
        if (!fgets(found, sizeof found, p)) found[0] = 0;
        pclose(p);
    }
    found[strcspn(found, "\n")] = 0;
    REQUIRE(found[0]);
    CHECK(files_equal(found, tmp("first.safetensors")));
    /* Hit: replace the entry with another valid state; the load must return it. */
    copy_file(gpath("voice/voice_24k_state.safetensors"), found);
    REQUIRE(ctts_voice_load_ex(m, gpath("voice/voice_22k.wav"), &vp, &v, err, sizeof err) ==
            CTTS_OK);
    REQUIRE(ctts_voice_save(v, tmp("hit.safetensors"), err, sizeof err) == CTTS_OK);
    CHECK(files_equal(tmp("hit.safetensors"), gpath("voice/voice_24k_state.safetensors")));
    ctts_voice_free(v);
    /* Broken entry: recomputed and rewritten. */
    write_bytes(found, "garbage", 7);
    REQUIRE(ctts_voice_load_ex(m, gpath("voice/voice_22k.wav"), &vp, &v, err, sizeof err) ==
            CTTS_OK);
    REQUIRE(ctts_voice_save(v, tmp("again.safetensors"), err, sizeof err) == CTTS_OK);
    CHECK(files_equal(tmp("again.safetensors"), tmp("first.safetensors")));
    CHECK(files_equal(found, tmp("first.safetensors")));
    ctts_voice_free(v);
    /* Another cut length is another entry; no cache dir writes nothing. */
    vp.max_seconds = 0;
    REQUIRE(ctts_voice_load_ex(m, gpath("voice/voice_22k.wav"), &vp, &v, err, sizeof err) ==
            CTTS_OK);
    ctts_voice_free(v);
    CHECK_EQ_INT(count_files(dirbuf), 2);
    vp.cache_dir = NULL;
    REQUIRE(ctts_voice_load_ex(m, gpath("voice/voice_24k.wav"), &vp, &v, err, sizeof err) ==
            CTTS_OK);
    ctts_voice_free(v);
    CHECK_EQ_INT(count_files(dirbuf), 2);
    /* Bad max_seconds. */
    vp.max_seconds = -1;
    CHECK(ctts_voice_load_ex(m, gpath("voice/voice_22k.wav"), &vp, &v, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK(v == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp("cache"));
    CHECK(system(cmd) == 0);
    remove(tmp("first.safetensors"));
    remove(tmp("hit.safetensors"));
    remove(tmp("again.safetensors"));
    ctts_model_free(m);
}

/* State files and audio files are told apart by content, whatever the name. */
static void test_content_sniffing_and_pcm_api(void) {
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    ctts_model *m = NULL;
    REQUIRE(ctts_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) == CTTS_OK);
    copy_file(gpath("voice/voice_24k_state.safetensors"), tmp("state.bin"));
    copy_file(gpath("voice/voice_24k.wav"), tmp("clip.safetensors.dat"));
    ctts_voice *a = NULL, *b = NULL, *c = NULL;
    REQUIRE(ctts_voice_load(m, tmp("state.bin"), &a, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_voice_save(a, tmp("a.safetensors"), err, sizeof err) == CTTS_OK);
    CHECK(files_equal(tmp("a.safetensors"), gpath("voice/voice_24k_state.safetensors")));
    REQUIRE(ctts_voice_load(m, tmp("clip.safetensors.dat"), &b, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_voice_save(b, tmp("b.safetensors"), err, sizeof err) == CTTS_OK);
    /* From PCM in memory: the same voice as from the file. */
    audio_clip clip;
    REQUIRE(audio_read(gpath("voice/voice_24k.wav"), 0, &clip, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_voice_from_pcm(m, clip.pcm, clip.n, clip.sample_rate, &c, err, sizeof err) ==
            CTTS_OK);
    REQUIRE(ctts_voice_save(c, tmp("c.safetensors"), err, sizeof err) == CTTS_OK);
    CHECK(files_equal(tmp("b.safetensors"), tmp("c.safetensors")));
    ctts_voice_free(c);
    c = NULL;
    /* PCM checks. */
    CHECK(ctts_voice_from_pcm(m, clip.pcm, 0, 24000, &c, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(ctts_voice_from_pcm(m, NULL, 10, 24000, &c, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(ctts_voice_from_pcm(m, clip.pcm, clip.n, 0, &c, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "sample rate 0 Hz");
    CHECK(ctts_voice_from_pcm(m, clip.pcm, clip.n, 999, &c, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK(ctts_voice_from_pcm(m, clip.pcm, clip.n, 800000, &c, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    clip.pcm[100] = NAN;
    CHECK(ctts_voice_from_pcm(m, clip.pcm, clip.n, 24000, &c, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "sample 100 is not a finite number");
    clip.pcm[100] = INFINITY;
    CHECK(ctts_voice_from_pcm(m, clip.pcm, clip.n, 24000, &c, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK(c == NULL);
    audio_clip_free(&clip);
    const char *names[] = {"state.bin", "clip.safetensors.dat", "a.safetensors", "b.safetensors",
                           "c.safetensors"};
    for (int i = 0; i < 5; i++) remove(tmp(names[i]));
    ctts_voice_free(a);
    ctts_voice_free(b);
    ctts_model_free(m);
}

/* ---- hostile inputs through the public API ---- */

static void put_le(unsigned char *p, uint32_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void write_wav16(const char *path, int channels, uint32_t rate, const int16_t *s,
                        size_t frames) {
    size_t bytes = frames * (size_t)channels * 2;
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    put_le(h + 4, (uint32_t)(36 + bytes), 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 16, 4);
    put_le(h + 20, 1, 2);
    put_le(h + 22, (uint32_t)channels, 2);
    put_le(h + 24, rate, 4);
    put_le(h + 28, rate * (uint32_t)channels * 2, 4);
    put_le(h + 32, (uint32_t)channels * 2, 2);
    put_le(h + 34, 16, 2);
    memcpy(h + 36, "data", 4);
    put_le(h + 40, (uint32_t)bytes, 4);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(h, 1, 44, f);
    if (bytes) fwrite(s, 1, bytes, f);
    fclose(f);
}

static void test_hostile_inputs(void) {
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    ctts_model *m = NULL;
    REQUIRE(ctts_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) == CTTS_OK);
    int16_t z[2400];
    memset(z, 0, sizeof z);
    write_bytes(tmp("empty.wav"), "", 0);
    write_wav16(tmp("header_only.wav"), 1, 24000, NULL, 0);
    write_wav16(tmp("zero_channels.wav"), 0, 24000, z, 100);
    write_wav16(tmp("absurd_rate.wav"), 1, 3000000, z, 2400);
    write_wav16(tmp("rate_1hz.wav"), 1, 1, z, 2400);
    const char *text = "Hello, I am a text file with a .wav name.\n";
    write_bytes(tmp("text.wav"), text, strlen(text));
    const unsigned char stub[] = {0xFF, 0xFB, 0x90, 0x64, 0x00, 0x00, 0x00, 0x00};
    write_bytes(tmp("truncated.mp3"), stub, sizeof stub);
    struct {
        const char *name, *needle;
    } bad[] = {
        {"empty.wav", "empty file"},
        {"header_only.wav", "no audio samples"},
        {"zero_channels.wav", "not a readable audio file"},
        {"absurd_rate.wav", "sample rate 3000000 Hz"},
        {"rate_1hz.wav", "sample rate 1 Hz"},
        {"text.wav", "not a readable audio file"},
        {"truncated.mp3", "truncated.mp3"},
        {"does_not_exist.wav", "unknown voice"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ctts_voice *v = NULL;
        err[0] = 0;
        ctts_status st = ctts_voice_load(m, tmp(bad[k].name), &v, err, sizeof err);
        if (st >= 0) TEST_FAIL_AT("%s: accepted", bad[k].name);
        CHECK(v == NULL);
        CHECK_STR_CONTAINS(err, bad[k].name);
        CHECK_STR_CONTAINS(err, bad[k].needle);
        CHECK(strchr(err, '\n') == NULL);
        ctts_voice_free(v);
    }
    /* Accepted like the official code: 10 ms (one latent frame), pure silence. */
    write_wav16(tmp("ten_ms.wav"), 1, 24000, z, 240);
    ctts_voice *v = NULL;
    REQUIRE(ctts_voice_load(m, tmp("ten_ms.wav"), &v, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_voice_save(v, tmp("ten_ms.safetensors"), err, sizeof err) == CTTS_OK);
    ctts_voice_free(v);
    st_file *f = NULL;
    REQUIRE(st_open(tmp("ten_ms.safetensors"), &f, err, sizeof err) == CTTS_OK);
    const ctts_tensor *c0 = st_find(f, "transformer.layers.0.self_attn/cache");
    CHECK(c0 && c0->shape[2] == 2); /* BOS + one latent */
    st_close(f);
    int16_t *sil = calloc(24000 * 3, sizeof *sil);
    REQUIRE(sil);
    write_wav16(tmp("silence.wav"), 1, 24000, sil, 24000 * 3);
    free(sil);
    pocket_model *pm = load_tiny(err);
    REQUIRE(pm);
    audio_clip clip;
    REQUIRE(audio_read(tmp("silence.wav"), 30, &clip, err, sizeof err) == CTTS_OK);
    pocket_voice *pv = NULL;
    REQUIRE(pocket_voice_from_pcm(pm, clip.pcm, clip.n, clip.sample_rate, &pv, err, sizeof err) ==
            CTTS_OK);
    audio_clip_free(&clip);
    CHECK_EQ_INT(pocket_voice_length(pv), 1 + 38);
    size_t plane = (size_t)pocket_voice_length(pv) * (size_t)pm->cfg.flow.d_model;
    float *kv = malloc(2 * plane * sizeof *kv);
    REQUIRE(kv);
    pocket_flowlm_state_get_layer(pv->state, 0, kv, kv + plane);
    int finite = 1;
    for (size_t i = 0; i < 2 * plane; i++) finite &= isfinite(kv[i]) != 0;
    CHECK(finite);
    free(kv);
    pocket_voice_free(pv);
    /* 10 minutes (8 kHz stereo): cut to the first 30 s, no out-of-memory. */
    const size_t frames = 8000 * 600;
    int16_t *lng = malloc(frames * 2 * sizeof *lng);
    REQUIRE(lng);
    for (size_t i = 0; i < frames * 2; i++) lng[i] = (int16_t)(((i * 7919) % 4001) - 2000);
    write_wav16(tmp("ten_minutes.wav"), 2, 8000, lng, frames);
    free(lng);
    REQUIRE(audio_read(tmp("ten_minutes.wav"), 30, &clip, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(clip.n, 8000 * 30);
    CHECK_EQ_INT(clip.truncated, 1);
    audio_clip_free(&clip);
    REQUIRE(ctts_voice_load(m, tmp("ten_minutes.wav"), &v, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_voice_save(v, tmp("ten_minutes.safetensors"), err, sizeof err) == CTTS_OK);
    ctts_voice_free(v);
    REQUIRE(st_open(tmp("ten_minutes.safetensors"), &f, err, sizeof err) == CTTS_OK);
    c0 = st_find(f, "transformer.layers.0.self_attn/cache");
    CHECK(c0 && c0->shape[2] == 1 + 720000 / 1920); /* 30 s at 24 kHz */
    st_close(f);
    /* Stereo MP3 / FLAC clips clone (downmixed). */
    float *st2 = malloc(24000 * 2 * sizeof *st2);
    REQUIRE(st2);
    for (int i = 0; i < 24000; i++) {
        st2[2 * i] = 0.3f * sinf(i * 0.031f);
        st2[2 * i + 1] = 0.2f * sinf(i * 0.017f);
    }
    CHECK(write_sf(tmp("stereo.mp3"), SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 2, 24000, st2,
                   24000) == 0);
    CHECK(write_sf(tmp("stereo.flac"), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, 48000, st2, 24000) ==
          0);
    free(st2);
    REQUIRE(ctts_voice_load(m, tmp("stereo.mp3"), &v, err, sizeof err) == CTTS_OK);
    ctts_voice_free(v);
    REQUIRE(ctts_voice_load(m, tmp("stereo.flac"), &v, err, sizeof err) == CTTS_OK);
    ctts_voice_free(v);
    pocket_model_free(pm);
    ctts_model_free(m);
    const char *names[] = {"empty.wav", "header_only.wav", "zero_channels.wav", "absurd_rate.wav",
                           "rate_1hz.wav", "text.wav", "truncated.mp3", "ten_ms.wav",
                           "ten_ms.safetensors", "silence.wav", "ten_minutes.wav",
                           "ten_minutes.safetensors", "stereo.mp3", "stereo.flac"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp(names[i]));
}

static void test_zz_cleanup(void) {
    if (tmpdir[0]) CHECK(rmdir(tmpdir) == 0);
}

TEST_MAIN(T(test_resampled_prompt_matches_scipy), T(test_encoder_latents_of_golden_clips),
          T(test_cloned_states_match_official), T(test_generation_with_cloned_voices),
          T(test_cloned_voice_file_roundtrip), T(test_voice_cache),
          T(test_content_sniffing_and_pcm_api), T(test_hostile_inputs), T(test_zz_cleanup))
