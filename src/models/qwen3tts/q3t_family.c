/*
 * The Qwen3-TTS entry of the model-family table (models/arch.h): thin
 * adapters from the table's opaque pointers onto qwen3tts.h.
 *
 * Voices: a Qwen3-TTS voice is a cloning prompt (x-vector, reference codes
 * and transcript) for Base models, made from a recording (q3t_voice.c) or
 * read from a prompt file. CustomVoice models take their speaker from
 * ctts_gen_params.speaker and refuse voices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "models/arch.h"
#include "models/qwen3tts/qwen3tts.h"

/* Strings that ctts_model_info points to. */
typedef struct {
    q3t_model *m;
    char config_path[Q3T_PATH_MAX + 16];
} fam_model;

static int detect(const char *path) { return q3t_detect(path); }

static ctts_status model_load(const char *path, const ctts_model_params *p, void **model,
                              ctts_model_info *info, char *err, size_t err_len) {
    *model = NULL;
    fam_model *fm = calloc(1, sizeof *fm);
    if (!fm) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = q3t_model_load(path, p, &fm->m, err, err_len);
    if (st != CTTS_OK) {
        free(fm);
        return st;
    }
    const q3t_config *c = q3t_model_config(fm->m);
    snprintf(fm->config_path, sizeof fm->config_path, "%s/config.json", c->dir);
    memset(info, 0, sizeof *info);
    info->family = "qwen3tts";
    info->sample_rate = c->codec.output_sample_rate;
    info->frame_rate = (float)c->codec.output_sample_rate / (float)c->codec.decode_upsample_rate;
    info->n_params = q3t_model_n_params(fm->m);
    info->config_path = fm->config_path;
    info->language = "";
    info->voice_cloning = c->model_type == Q3T_TYPE_BASE;
    *model = fm;
    return CTTS_OK;
}

static void model_free(void *model) {
    fam_model *fm = model;
    if (!fm) return;
    q3t_model_free(fm->m);
    free(fm);
}

static size_t model_describe(const void *model, char *buf, size_t len) {
    return q3t_model_describe(((const fam_model *)model)->m, buf, len);
}

static ctts_status tokenize(const void *model, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len) {
    return q3t_tokenize(((const fam_model *)model)->m, text, prepared, ids, n, err, err_len);
}

static ctts_gen_params default_gen_params(const void *model) {
    return q3t_default_gen_params(((const fam_model *)model)->m);
}

static ctts_status voice_load(void *model, const char *path, void **voice, char *err,
                              size_t err_len) {
    return q3t_voice_load(((fam_model *)model)->m, path, (q3t_voice **)voice, err, err_len);
}

static ctts_status voice_save(const void *voice, const char *path, char *err, size_t err_len) {
    return q3t_voice_save(voice, path, err, err_len);
}

static void voice_free(void *voice) { q3t_voice_free(voice); }

static ctts_status export_gguf(const void *model, const char *out_dir, char *err,
                               size_t err_len) {
    return q3t_model_export_gguf(((const fam_model *)model)->m, out_dir, err, err_len);
}

static struct ctts_backend *model_backend(void *model) {
    return q3t_model_backend(((fam_model *)model)->m);
}

static const char *speaker_name(const void *model, int i) {
    const q3t_talker_config *tc = &q3t_model_config(((const fam_model *)model)->m)->talker;
    return i >= 0 && i < tc->n_speakers ? tc->speakers[i].name : NULL;
}

static size_t max_step_samples(const void *model) {
    return q3t_step_max_samples(((const fam_model *)model)->m);
}

/* The session side: the q3t stream itself takes text as it arrives. */
typedef struct {
    q3t_stream *s;
    int begun, has_text; /* has_text: something besides whitespace was fed */
} fam_stream;

static ctts_status stream_new(void *model, void **stream, char *err, size_t err_len) {
    *stream = NULL;
    fam_stream *fs = calloc(1, sizeof *fs);
    if (!fs) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = q3t_stream_new(((fam_model *)model)->m, &fs->s, err, err_len);
    if (st != CTTS_OK) {
        free(fs);
        return st;
    }
    *stream = fs;
    return CTTS_OK;
}

static void stream_free(void *stream) {
    fam_stream *fs = stream;
    if (!fs) return;
    q3t_stream_free(fs->s);
    free(fs);
}

static ctts_status stream_begin(void *stream, const void *voice, const ctts_gen_params *p,
                                char *err, size_t err_len) {
    fam_stream *fs = stream;
    ctts_status st = q3t_stream_begin(fs->s, voice, p, err, err_len);
    fs->begun = st == CTTS_OK;
    fs->has_text = 0;
    return st;
}

static ctts_status stream_feed(void *stream, const char *utf8, size_t n, char *err,
                               size_t err_len) {
    fam_stream *fs = stream;
    for (size_t i = 0; i < n && !fs->has_text; i++) fs->has_text = !strchr(" \t\r\n\v\f", utf8[i]);
    return q3t_stream_feed(fs->s, utf8, n, err, err_len);
}

/* An empty text is refused here (the model itself would speak the template's
 * end token, as the official slicing does). */
static ctts_status stream_end(void *stream, char *err, size_t err_len) {
    fam_stream *fs = stream;
    if (!fs->has_text) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is empty");
    return q3t_stream_end(fs->s, err, err_len);
}

static ctts_status stream_step(void *stream, float *pcm, size_t *n, char *err, size_t err_len) {
    fam_stream *fs = stream;
    *n = 0;
    if (!fs->begun) return ctts_err(err, err_len, CTTS_E_STATE, "read before begin");
    return q3t_stream_step(fs->s, pcm, n, err, err_len);
}

static void stream_step_many(void *const *streams, int n, float *const *pcm, size_t *n_out,
                             ctts_status *res, char *const *err, size_t err_len) {
    q3t_stream *run[Q3T_MAX_BATCH];
    float *rpcm[Q3T_MAX_BATCH];
    size_t rn[Q3T_MAX_BATCH];
    ctts_status rres[Q3T_MAX_BATCH];
    char *rerr[Q3T_MAX_BATCH];
    int idx[Q3T_MAX_BATCH], k = 0;
    for (int i = 0; i < n; i++) {
        fam_stream *fs = streams[i];
        if (fs->begun && k < Q3T_MAX_BATCH) {
            run[k] = fs->s, rpcm[k] = pcm[i], rerr[k] = err[i], idx[k++] = i;
        } else {
            res[i] = stream_step(fs, pcm[i], &n_out[i], err[i], err_len);
        }
    }
    if (!k) return;
    q3t_stream_step_many(run, k, rpcm, rn, rres, rerr, err_len);
    for (int j = 0; j < k; j++) res[idx[j]] = rres[j], n_out[idx[j]] = rn[j];
}

static void stream_times(const void *stream, ctts_timings *t) {
    const fam_stream *fs = stream;
    q3t_stream_times(fs->s, &t->prepare_ms, &t->prefill_ms, &t->flowlm_ms, &t->mimi_ms);
    /* One prompt: the whole preparation and prefill precede the first frame. */
    t->first_text_ms = t->prepare_ms;
    t->first_prefill_ms = t->prefill_ms;
    q3t_stream_first_frame_times(fs->s, &t->first_flowlm_ms, &t->first_mimi_ms);
}

const ctts_family q3t_family = {
    .name = "qwen3tts",
    .detect = detect,
    .model_load = model_load,
    .model_free = model_free,
    .model_describe = model_describe,
    .tokenize = tokenize,
    .default_gen_params = default_gen_params,
    .voice_load = voice_load,
    .voice_save = voice_save,
    .voice_free = voice_free,
    .max_step_samples = max_step_samples,
    .stream_new = stream_new,
    .stream_free = stream_free,
    .stream_begin = stream_begin,
    .stream_feed = stream_feed,
    .stream_end = stream_end,
    .stream_step = stream_step,
    .stream_times = stream_times,
    .export_gguf = export_gguf,
    .model_backend = model_backend,
    .speaker_name = speaker_name,
    .stream_step_many = stream_step_many,
};
