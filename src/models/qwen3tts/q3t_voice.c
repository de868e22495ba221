/*
 * Qwen3-TTS voices (Base models): the voice-clone prompt of the official
 * create_voice_clone_prompt, built from audio or read from a prompt file.
 *
 * Data flow: audio file -> src/audio (any format, channels averaged) ->
 * resample to 24 kHz when the file has another rate -> speaker encoder ->
 * x-vector; with a transcript, the same audio -> speech tokenizer encoder ->
 * reference codes [T, 16] (ICL). The transcript of "name.wav" is read from
 * "name.txt" when that file exists (trailing newlines dropped).
 *
 * Differences from the official code: for audio that is not 24 kHz the
 * official code resamples with librosa (soxr) for the speaker encoder and
 * hands the file rate to the tokenizer; we resample both with
 * src/audio/resample.c (SciPy resample_poly semantics). 24 kHz input, the
 * goldens' case, is used unchanged by both.
 *
 * Prompt files: safetensors with "ref_spk_embedding" [D] F32, optional
 * "ref_code" [T, G] I32, and __metadata__ {"ref_text": ...} (required with
 * ref_code).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_read.h"
#include "audio/resample.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "models/qwen3tts/qwen3tts.h"
#include "models/qwen3tts/speaker_encoder.h"
#include "models/qwen3tts/speech_encoder.h"

ctts_status q3t_voice_from_pcm(const q3t_model *m, const float *pcm, size_t n, int sample_rate,
                               const char *ref_text, q3t_voice **out, char *err, size_t err_len) {
    if (!m || !out || (n && !pcm))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice: bad argument");
    *out = NULL;
    const q3t_config *c = q3t_model_config(m);
    const q3t_speaker_encoder *spk = q3t_model_speaker_encoder(m);
    const q3t_speech_encoder *senc = q3t_model_speech_encoder(m);
    if (c->model_type != Q3T_TYPE_BASE || !spk)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "voice cloning needs a Qwen3-TTS base model (this one is %s)",
                        c->model_type == Q3T_TYPE_CUSTOM_VOICE ? "custom_voice: use a speaker"
                                                               : "voice_design");
    const int icl = ref_text && *ref_text;
    if (icl && !senc)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "voice: the speech tokenizer has no encoder (needed with a transcript)");
    if (n == 0) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice audio has no samples");
    if (sample_rate < AUDIO_MIN_RATE || sample_rate > AUDIO_MAX_RATE)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "voice audio: sample rate %d Hz is outside %d..%d Hz", sample_rate,
                        AUDIO_MIN_RATE, AUDIO_MAX_RATE);
    if ((double)n > AUDIO_MAX_SECONDS * sample_rate)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice audio is longer than %g s",
                        AUDIO_MAX_SECONDS);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "voice audio: sample %zu is not a finite number", i);
    const int rate = q3t_speaker_encoder_sample_rate(spk);
    float *res = NULL;
    size_t nr = n;
    ctts_status st = CTTS_OK;
    if (sample_rate != rate) {
        st = resample_rate(pcm, n, sample_rate, rate, &res, &nr, err, err_len);
        if (st != CTTS_OK) return st;
        pcm = res;
    }
    const int D = c->talker.dec.hidden_size, G = c->talker.dec.num_code_groups;
    float *x = malloc((size_t)D * sizeof *x);
    int32_t *codes = NULL;
    int n_frames = 0;
    if (!x) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (st == CTTS_OK && q3t_speaker_encoder_dim(spk) != D)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "speaker encoder width %d != talker width %d",
                      q3t_speaker_encoder_dim(spk), D);
    if (st == CTTS_OK) st = q3t_speaker_embed(spk, pcm, nr, x, NULL, NULL, err, err_len);
    if (st == CTTS_OK && icl)
        st = q3t_speech_encode(senc, pcm, nr, G, &codes, &n_frames, NULL, NULL, err, err_len);
    if (st == CTTS_OK)
        st = q3t_voice_new(m, x, icl ? codes : NULL, icl ? n_frames : 0, icl ? ref_text : NULL,
                           out, err, err_len);
    free(codes);
    free(x);
    free(res);
    return st;
}

/* "dir/name.wav" -> contents of "dir/name.txt" (malloc'd, trailing newlines
 * dropped), or NULL when there is no such file. */
static char *read_transcript(const char *path, ctts_status *st, char *err, size_t err_len) {
    *st = CTTS_OK;
    size_t n = strlen(path);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : n;
    char *tp = malloc(stem + 5);
    if (!tp) {
        *st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        return NULL;
    }
    memcpy(tp, path, stem);
    memcpy(tp + stem, ".txt", 5);
    FILE *f = fopen(tp, "rb");
    if (!f) {
        free(tp);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap + 1);
    while (text) {
        size_t k = fread(text + len, 1, cap - len, f);
        len += k;
        if (len < cap) break;
        if (cap > (1u << 20)) {
            free(text);
            text = NULL;
            *st = ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: transcript longer than 1 MB",
                           tp);
            break;
        }
        cap *= 2;
        char *t2 = realloc(text, cap + 1);
        if (!t2) {
            free(text);
            text = NULL;
        } else {
            text = t2;
        }
    }
    fclose(f);
    if (!text && *st == CTTS_OK) *st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (text) {
        text[len] = 0;
        if (strlen(text) != len) {
            *st = ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: transcript holds a NUL byte",
                           tp);
            free(text);
            text = NULL;
        } else {
            while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = 0;
        }
    }
    free(tp);
    return text;
}

static int is_safetensors(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[9] = {0};
    size_t k = fread(h, 1, 9, f);
    fclose(f);
    /* u64 header length (small) followed by '{' */
    return k == 9 && h[8] == '{' && h[5] == 0 && h[6] == 0 && h[7] == 0;
}

static ctts_status load_prompt_file(const q3t_model *m, const char *path, q3t_voice **out,
                                    char *err, size_t err_len) {
    st_file *st = NULL;
    ctts_status rc = st_open(path, &st, err, err_len);
    if (rc != CTTS_OK) return rc;
    const q3t_config *c = q3t_model_config(m);
    const int D = c->talker.dec.hidden_size, G = c->talker.dec.num_code_groups;
    const ctts_tensor *x = st_find(st, "ref_spk_embedding");
    const ctts_tensor *rc_t = st_find(st, "ref_code");
    const char *ref_text = st_metadata_get(st, "ref_text");
    float *xv = NULL;
    int32_t *codes = NULL;
    int n_frames = 0;
    if (!x || x->dtype != CTTS_DT_F32 || ctts_tensor_numel(x) != D)
        rc = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: needs 'ref_spk_embedding' F32 with %d values", path, D);
    else if (rc_t && (rc_t->dtype != CTTS_DT_I32 || rc_t->ndim != 2 || rc_t->shape[1] != G ||
                      rc_t->shape[0] < 1))
        rc = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: 'ref_code' must be I32 [frames, %d]",
                      path, G);
    else if (rc_t && (!ref_text || !*ref_text))
        rc = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: 'ref_code' needs the transcript in __metadata__ 'ref_text'", path);
    if (rc == CTTS_OK) {
        xv = malloc((size_t)D * sizeof *xv);
        if (rc_t) {
            n_frames = (int)rc_t->shape[0];
            codes = malloc(rc_t->nbytes);
        }
        if (!xv || (rc_t && !codes)) rc = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (rc == CTTS_OK) {
        memcpy(xv, x->data, (size_t)D * sizeof *xv); /* the data may be unaligned */
        if (rc_t) memcpy(codes, rc_t->data, rc_t->nbytes);
        rc = q3t_voice_new(m, xv, codes, n_frames, rc_t ? ref_text : NULL, out, err, err_len);
        if (rc != CTTS_OK && err && err_len) {
            char inner[256];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, err_len, "%s: %s", path, inner);
        }
    }
    free(xv);
    free(codes);
    st_close(st);
    return rc;
}

ctts_status q3t_voice_load(const q3t_model *m, const char *path, q3t_voice **out, char *err,
                           size_t err_len) {
    if (!m || !path || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice: bad argument");
    *out = NULL;
    if (q3t_model_config(m)->model_type != Q3T_TYPE_BASE)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "voice '%s': only Qwen3-TTS base models clone voices (custom_voice "
                        "models take a built-in speaker)", path);
    FILE *f = fopen(path, "rb");
    if (!f) return ctts_err(err, err_len, CTTS_E_NOT_FOUND, "voice '%s': no such file", path);
    fclose(f);
    if (is_safetensors(path)) return load_prompt_file(m, path, out, err, err_len);
    audio_clip clip;
    memset(&clip, 0, sizeof clip);
    ctts_status st = audio_read(path, 0.0, &clip, err, err_len);
    if (st != CTTS_OK) return st;
    char *text = read_transcript(path, &st, err, err_len);
    if (st == CTTS_OK)
        st = q3t_voice_from_pcm(m, clip.pcm, clip.n, clip.sample_rate, text, out, err, err_len);
    if (st != CTTS_OK && err && err_len && !strstr(err, path)) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "%s: %s", path, inner);
    }
    free(text);
    audio_clip_free(&clip);
    return st;
}

ctts_status q3t_voice_save(const q3t_voice *v, const char *path, char *err, size_t err_len) {
    if (!v || !path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice: bad argument");
    const int D = v->dim, G = v->groups;
    ctts_tensor t[2];
    memset(t, 0, sizeof t);
    t[0] = (ctts_tensor){.dtype = CTTS_DT_F32, .ndim = 1, .shape = {D}, .data = v->xvector,
                         .nbytes = (size_t)D * sizeof(float), .name = "ref_spk_embedding"};
    int n = 1;
    if (v->n_ref_frames) {
        t[1] = (ctts_tensor){.dtype = CTTS_DT_I32, .ndim = 2, .shape = {v->n_ref_frames, G},
                             .data = v->ref_codes,
                             .nbytes = (size_t)v->n_ref_frames * G * sizeof(int32_t),
                             .name = "ref_code"};
        n = 2;
    }
    const char *keys[2] = {"format", "ref_text"};
    const char *vals[2] = {"ctts-qwen3tts-voice", v->ref_text ? v->ref_text : ""};
    return st_write_meta(path, t, n, keys, vals, v->n_ref_frames ? 2 : 1, err, err_len);
}
