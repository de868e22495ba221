/*
 * Pocket TTS voices: a voice is the FlowLM KV cache after the voice prompt.
 * Read from and written to the official voice-state safetensors format
 * ("transformer.layers.{l}.self_attn/cache" [2, 1, T, H, Dh] with K (RoPE
 * applied) then V, and ".../offset" int64 [1]; older files carry
 * ".../current_end" instead of offset, whose length is the offset).
 *
 * Cloning (the official get_state_for_audio_prompt, POCKET_NOTES.md section 7):
 * mono pcm -> resample_poly to the Mimi rate (no-op at 24 kHz) -> Mimi encoder
 * latents [T, 32] -> speaker projection, bos_before_voice first -> FlowLM
 * prefill of those T + 1 rows into a fresh state of exactly that capacity.
 * Reading files, truncation and caching are the caller's (core/voice_audio.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audio/resample.h"
#include "base/error.h"
#include "base/sha256.h"
#include "io/safetensors.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

/* Reads "transformer.layers.{l}.self_attn/{offset,cache,current_end}" entries. */
ctts_status pocket_voice_load(pocket_model *m, const char *path, pocket_voice **out, char *err,
                              size_t err_len) {
    *out = NULL;
    st_file *f = NULL;
    ctts_status st = st_open(path, &f, err, err_len);
    if (st != CTTS_OK) return st;
    const pocket_flowlm_config *fc = &m->cfg.flow;
    int H = fc->num_heads, Dh = fc->d_model / fc->num_heads, L = fc->num_layers;
    int T = -1;
    const ctts_tensor **caches = calloc((size_t)L, sizeof *caches);
    if (!caches) {
        st_close(f);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    for (int l = 0; l < L && st == CTTS_OK; l++) {
        char key[128];
        snprintf(key, sizeof key, "transformer.layers.%d.self_attn/cache", l);
        const ctts_tensor *c = st_find(f, key);
        if (!c) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: missing tensor '%s' (not a voice "
                          "state for this model?)", path, key);
            break;
        }
        if (c->dtype != CTTS_DT_F32 || c->ndim != 5 || c->shape[0] != 2 || c->shape[1] != 1 ||
            c->shape[3] != H || c->shape[4] != Dh) {
            char s[96];
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: tensor '%s' must be F32 [2, 1, T, %d, %d], got %s %s", path, key, H,
                          Dh, ctts_dtype_name(c->dtype), ctts_shape_str(c, s, sizeof s));
            break;
        }
        int64_t off = c->shape[2];
        snprintf(key, sizeof key, "transformer.layers.%d.self_attn/offset", l);
        const ctts_tensor *o = st_find(f, key);
        snprintf(key, sizeof key, "transformer.layers.%d.self_attn/current_end", l);
        const ctts_tensor *ce = st_find(f, key);
        if (o) {
            if (o->dtype != CTTS_DT_I64 || ctts_tensor_numel(o) != 1) {
                st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: 'offset' of layer %d must be one "
                              "I64", path, l);
                break;
            }
            memcpy(&off, o->data, 8);
        } else if (ce) {
            off = ce->ndim ? ce->shape[0] : 1;
        }
        if (off < 0 || off > c->shape[2] || (T >= 0 && off != T)) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: layer %d offset %lld is out of range "
                          "or differs between layers", path, l, (long long)off);
            break;
        }
        T = (int)off;
        caches[l] = c;
    }
    pocket_voice *v = NULL;
    if (st == CTTS_OK && T < 0) st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty voice", path);
    if (st == CTTS_OK) {
        v = calloc(1, sizeof *v);
        if (!v) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        v->model = m;
        st = pocket_flowlm_state_new(m->flowlm, T > 0 ? T : 1, &v->state, err, err_len);
    }
    float *k = NULL, *vv = NULL;
    if (st == CTTS_OK) {
        size_t row = (size_t)fc->d_model;
        k = malloc((size_t)(T + 1) * row * sizeof *k);
        vv = malloc((size_t)(T + 1) * row * sizeof *vv);
        if (!k || !vv) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        for (int l = 0; l < L && st == CTTS_OK; l++) {
            /* cache [2, 1, Tc, H, Dh]: K rows then V rows, each row = H*Dh floats. */
            const char *base = caches[l]->data;
            size_t plane = (size_t)caches[l]->shape[2] * row * 4;
            memcpy(k, base, (size_t)T * row * 4);
            memcpy(vv, base + plane, (size_t)T * row * 4);
            st = pocket_flowlm_state_set_layer(v->state, l, k, vv, T);
        }
        if (st == CTTS_OK) st = pocket_flowlm_state_set_offset(v->state, T);
    }
    free(k);
    free(vv);
    free(caches);
    st_close(f);
    if (st != CTTS_OK) {
        pocket_voice_free(v);
        return st;
    }
    *out = v;
    return CTTS_OK;
}

ctts_status pocket_voice_save(const pocket_voice *v, const char *path, char *err,
                              size_t err_len) {
    const pocket_flowlm_config *fc = &v->model->cfg.flow;
    int L = fc->num_layers, H = fc->num_heads, Dh = fc->d_model / H;
    int T = pocket_flowlm_state_offset(v->state);
    size_t plane = (size_t)T * (size_t)fc->d_model;
    ctts_tensor *ts = calloc((size_t)(2 * L), sizeof *ts);
    float *data = malloc((size_t)L * 2 * plane * sizeof *data + 4);
    int64_t *offsets = malloc((size_t)L * sizeof *offsets);
    char(*names)[96] = malloc((size_t)(2 * L) * sizeof *names);
    ctts_status st = CTTS_OK;
    if (!ts || !data || !offsets || !names) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (int l = 0; l < L && st == CTTS_OK; l++) {
        float *kv = data + (size_t)l * 2 * plane;
        st = pocket_flowlm_state_get_layer(v->state, l, kv, kv + plane);
        offsets[l] = T;
        snprintf(names[2 * l], 96, "transformer.layers.%d.self_attn/cache", l);
        snprintf(names[2 * l + 1], 96, "transformer.layers.%d.self_attn/offset", l);
        ts[2 * l] = (ctts_tensor){.dtype = CTTS_DT_F32, .ndim = 5, .shape = {2, 1, T, H, Dh},
                                  .data = kv, .nbytes = 2 * plane * 4, .name = names[2 * l]};
        ts[2 * l + 1] = (ctts_tensor){.dtype = CTTS_DT_I64, .ndim = 1, .shape = {1},
                                      .data = &offsets[l], .nbytes = 8, .name = names[2 * l + 1]};
    }
    /* The official export writes no __metadata__ entry. */
    if (st == CTTS_OK) st = st_write_meta(path, ts, 2 * L, NULL, NULL, 0, err, err_len);
    free(ts);
    free(data);
    free(offsets);
    free(names);
    return st;
}

void pocket_voice_free(pocket_voice *v) {
    if (!v) return;
    pocket_flowlm_state_free(v->state);
    free(v);
}


ctts_status pocket_voice_from_pcm(pocket_model *m, const float *pcm, size_t n, int sample_rate,
                                  pocket_voice **out, char *err, size_t err_len) {
    *out = NULL;
    if (!m || (n && !pcm))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice from pcm: bad arguments");
    if (n == 0) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice prompt has no samples");
    if (sample_rate < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice prompt: bad sample rate %d",
                        sample_rate);
    const int rate = m->cfg.mimi.sample_rate;
    float *x = NULL;
    size_t nx = 0;
    ctts_status st = CTTS_OK;
    if (sample_rate != rate) st = resample_rate(pcm, n, sample_rate, rate, &x, &nx, err, err_len);
    float *lat = NULL, *rows = NULL;
    int T = 0, n_rows = 0;
    if (st == CTTS_OK)
        st = pocket_mimi_encode(m->mimi, x ? x : pcm, x ? nx : n, &lat, &T, NULL, NULL, err,
                                err_len);
    free(x);
    const size_t D = (size_t)m->cfg.flow.d_model;
    if (st == CTTS_OK) {
        rows = malloc(((size_t)T + 1) * D * sizeof *rows);
        if (!rows) st = ctts_err(err, err_len, CTTS_E_OOM, "voice prompt: out of memory");
    }
    if (st == CTTS_OK) {
        st = pocket_flowlm_voice_rows(m->flowlm, lat, T, rows, &n_rows);
        if (st != CTTS_OK) st = ctts_err(err, err_len, st, "voice prompt: speaker projection failed");
    }
    free(lat);
    pocket_voice *v = NULL;
    if (st == CTTS_OK) {
        v = calloc(1, sizeof *v);
        if (!v) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        v->model = m;
        st = pocket_flowlm_state_new(m->flowlm, n_rows, &v->state, err, err_len);
    }
    if (st == CTTS_OK) {
        st = pocket_flowlm_prefill(m->flowlm, v->state, rows, n_rows, NULL);
        if (st != CTTS_OK) st = ctts_err(err, err_len, st, "voice prompt: FlowLM prefill failed");
    }
    free(rows);
    if (st != CTTS_OK) {
        pocket_voice_free(v);
        return st;
    }
    *out = v;
    return CTTS_OK;
}

int pocket_voice_length(const pocket_voice *v) {
    return v ? pocket_flowlm_state_offset(v->state) : 0;
}

static void hash_file_stat(ctts_sha256 *h, const char *path) {
    struct stat sb;
    long long f[3] = {-1, -1, -1};
    if (path[0] && stat(path, &sb) == 0) {
        f[0] = (long long)sb.st_size;
        f[1] = (long long)sb.st_mtim.tv_sec;
        f[2] = (long long)sb.st_mtim.tv_nsec;
    }
    ctts_sha256_update(h, path, strlen(path) + 1);
    ctts_sha256_update(h, f, sizeof f);
}

ctts_status pocket_model_identity(const pocket_model *m, unsigned char id[32]) {
    size_t need = pocket_model_describe(m, NULL, 0) + 1;
    char *desc = malloc(need);
    if (!desc) return CTTS_E_OOM;
    pocket_model_describe(m, desc, need);
    ctts_sha256 h;
    ctts_sha256_init(&h);
    ctts_sha256_update(&h, "ctts-pocket-voice-v1", 20);
    ctts_sha256_update(&h, desc, strlen(desc));
    free(desc);
    const pocket_config *c = &m->cfg;
    hash_file_stat(&h, c->weights_path);
    hash_file_stat(&h, c->flow_lm_weights_path);
    hash_file_stat(&h, c->mimi_weights_path);
    ctts_sha256_final(&h, id);
    return CTTS_OK;
}
