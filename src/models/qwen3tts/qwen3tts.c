/*
 * Qwen3-TTS-12Hz family glue (see qwen3tts.h): model loading with strict
 * tensor accounting, export, voices (the generation stream: q3t_stream.c).
 *
 * Weight lookups go through one callback per safetensors file that marks
 * each tensor it hands out (and converts it when a weight type was asked
 * for); after binding, a tensor nobody asked for is an error unless it
 * belongs to a part the model type does not run (the speaker encoder and
 * the speech tokenizer's encoder of a non-Base model), which is counted and
 * shown by describe.
 */
#include "models/qwen3tts/qwen3tts.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/error.h"
#include "io/file_copy.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "quant/convert.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/speaker_encoder.h"
#include "models/qwen3tts/speech_decoder.h"
#include "models/qwen3tts/speech_encoder.h"
#include "models/qwen3tts/talker.h"
#include "text/bpe.h"

/* One weights file: the official safetensors, or the GGUF of ctts quantize. */
typedef struct {
    st_file *st;
    gguf_file *gg;      /* instead of st */
    uint8_t *used;      /* [count] */
    ctts_dtype convert; /* linear weights converted to this at load (CTTS_DT_COUNT: as stored) */
    int n_threads;
    ctts_tensor *conv;  /* [count] converted copies, dtype COUNT until made */
    uint8_t *owned;     /* [count] conv[i].data was allocated here */
    int fast_decoder;   /* speech decoder in the fast modes' precision (lookup) */
    char *conv_err;     /* first conversion error (lookup cannot return one) */
    size_t conv_err_len;
    ctts_status conv_st;
} wfile;

struct q3t_model {
    q3t_config cfg;
    bpe_tokenizer *tok;
    wfile main, codec;
    ctts_backend *be;
    q3t_talker *talker;
    q3t_code_predictor *cp;
    q3t_speech_decoder *sdec;
    q3t_speaker_encoder *spk_enc; /* Base models: voice cloning */
    q3t_speech_encoder *senc;     /* Base models: reference codes */
    int64_t n_params;
    int n_skipped_main, n_skipped_codec; /* tensors of parts not run here */
    int n_threads, cpu_isa;              /* of m->be (pipelined streams split the threads) */
};

/* ---- weights ---- */

/* Conversion policy for ctts_model_params.weight_type: the matrices multiplied
 * each step (attention, MLP, heads, text projection) change dtype; embedding
 * tables (rows are gathered), norms, biases and everything of the speech
 * tokenizer stay as stored. For Q4_0 attention goes to Q8_0, as for Pocket. */
static ctts_dtype target_dtype(const ctts_tensor *t, ctts_dtype to) {
    const char *n = t->name ? t->name : "";
    if (t->ndim != 2 || strstr(n, "embedding") || strncmp(n, "talker.", 7) != 0) return t->dtype;
    if (to == CTTS_DT_Q4_0 && strstr(n, ".self_attn.")) return CTTS_DT_Q8_0;
    return to;
}

static int wf_count(const wfile *w) {
    return w->st ? st_count(w->st) : w->gg ? gguf_count(w->gg) : 0;
}
static const ctts_tensor *wf_tensor(const wfile *w, int i) {
    return w->st ? st_tensor(w->st, i) : gguf_tensor(w->gg, i);
}
static const char *wf_path(const wfile *w) {
    return w->st ? st_path(w->st) : w->gg ? gguf_path(w->gg) : "";
}
/* Index of the tensor called name, or -1. */
static int wf_find(const wfile *w, const char *name) {
    if (w->st) {
        const ctts_tensor *t = st_find(w->st, name);
        return t ? (int)(t - st_tensor(w->st, 0)) : -1;
    }
    for (int i = 0; i < wf_count(w); i++) /* ~500 tensors, once each at bind */
        if (!strcmp(gguf_tensor(w->gg, i)->name, name)) return i;
    return -1;
}

/* The fast modes run the audio decoder (its output is never fed back) in
 * BF16: matrices stored so (half the bytes streamed per call), convolutions
 * as BF16 products (twice the f32 rate with AVX512_BF16; *products set)
 * except the single-channel output and the depthwise ones, where packing
 * would cost more than it saves. Codebooks stay (rows are gathered); so does
 * everything outside decoder.*. */
static ctts_dtype fast_codec_dtype(const ctts_tensor *t, int *products) {
    const int dec = t->name && !strncmp(t->name, "decoder.", 8);
    *products = dec && t->ndim == 3 && strstr(t->name, "conv.weight") && t->shape[0] >= 8 &&
                t->shape[1] >= 8;
    const int matrix = dec && t->ndim == 2 && !strstr(t->name, "codebook");
    return *products || matrix ? CTTS_DT_BF16 : t->dtype;
}

static const ctts_tensor *lookup(void *ctx, const char *name) {
    wfile *w = ctx;
    const int idx = wf_find(w, name);
    if (idx < 0) return NULL;
    const size_t i = (size_t)idx;
    const ctts_tensor *t = wf_tensor(w, idx);
    w->used[i] = 1;
    if (w->conv[i].dtype != CTTS_DT_COUNT) return &w->conv[i];
    int bf16p = 0;
    const ctts_dtype fast = w->fast_decoder ? fast_codec_dtype(t, &bf16p) : t->dtype;
    ctts_dtype to = fast != t->dtype || bf16p       ? fast
                    : w->convert == CTTS_DT_COUNT ? t->dtype
                                                  : target_dtype(t, w->convert);
    if (bf16p && t->dtype == CTTS_DT_BF16) { /* stored so: the same data, flagged */
        w->conv[i] = *t;
        w->conv[i].bf16_products = 1;
        return &w->conv[i];
    }
    if (to == t->dtype || !quant_can_convert(t, to)) return t;
    void *data = NULL;
    size_t bytes = 0;
    ctts_status st = quant_convert(t, to, w->n_threads, &data, &bytes, w->conv_err,
                                   w->conv_err_len);
    if (st != CTTS_OK) {
        if (w->conv_st == CTTS_OK) w->conv_st = st;
        return t; /* reported after binding */
    }
    quant_release_pages(t->data, t->nbytes); /* the mapped BF16 pages are not needed */
    w->conv[i] = *t;
    w->conv[i].dtype = to;
    w->conv[i].data = data;
    w->conv[i].nbytes = bytes;
    w->conv[i].bf16_products = bf16p;
    w->owned[i] = 1;
    return &w->conv[i];
}

/* Whether the tensor called name is (after conversion) Q8_0 or Q4_0. */
static int block_quantized(const wfile *w, const char *name) {
    const int i = wf_find(w, name);
    if (i < 0) return 0;
    const ctts_dtype dt = w->conv[i].dtype != CTTS_DT_COUNT ? w->conv[i].dtype
                                                             : wf_tensor(w, i)->dtype;
    return dt == CTTS_DT_Q8_0 || dt == CTTS_DT_Q4_0;
}

static ctts_status wfile_open(wfile *w, const char *path, ctts_dtype convert, int n_threads,
                              char *err, size_t err_len) {
    w->convert = convert;
    w->n_threads = n_threads;
    const size_t pl = strlen(path);
    ctts_status st = pl > 5 && !strcmp(path + pl - 5, ".gguf") ? gguf_open(path, &w->gg, err, err_len)
                                                              : st_open(path, &w->st, err, err_len);
    if (st != CTTS_OK) return st;
    const size_t n = (size_t)wf_count(w) + 1;
    w->used = calloc(n, 1);
    w->owned = calloc(n, 1);
    w->conv = calloc(n, sizeof *w->conv);
    if (!w->used || !w->owned || !w->conv) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (size_t i = 0; i < n; i++) w->conv[i].dtype = CTTS_DT_COUNT;
    w->conv_err = err;
    w->conv_err_len = err_len;
    return CTTS_OK;
}

/* Drops the memory behind t (a tensor lookup returned) that nothing reads any
 * more: a converted copy is freed, mapped file pages are handed back (they
 * would be read again from the file if touched). */
static void wfile_release(wfile *w, const ctts_tensor *t) {
    for (int i = 0; w->conv && i < wf_count(w); i++) {
        if (&w->conv[i] != t) continue;
        if (w->owned[i]) {
            free(w->conv[i].data);
            w->conv[i].data = NULL;
            w->conv[i].nbytes = 0;
            w->owned[i] = 0;
        } else {
            quant_release_pages(t->data, t->nbytes);
        }
    }
}

static void wfile_close(wfile *w) {
    if (w->conv && w->owned)
        for (int i = 0; i < wf_count(w); i++)
            if (w->owned[i]) free(w->conv[i].data);
    st_close(w->st);
    gguf_close(w->gg);
    free(w->used);
    free(w->owned);
    free(w->conv);
    memset(w, 0, sizeof *w);
}

/* Unused tensors: those under skip_prefix are counted, any other is an error. */
static ctts_status check_used(const wfile *w, const char *skip_prefix, int *n_skipped,
                              int64_t *n_params, char *err, size_t err_len) {
    size_t pl = strlen(skip_prefix);
    for (int i = 0; i < wf_count(w); i++) {
        const ctts_tensor *t = wf_tensor(w, i);
        if (w->used[i]) {
            *n_params += ctts_tensor_numel(t);
            continue;
        }
        if (pl && strncmp(t->name, skip_prefix, pl) == 0) {
            (*n_skipped)++;
            continue;
        }
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: unexpected tensor '%s'",
                        wf_path(w), t->name);
    }
    return CTTS_OK;
}

int q3t_detect(const char *path) { return q3t_config_detect(path); }

/* The tokenizer must spell the special tokens with config.json's ids. */
static ctts_status check_tokenizer(const q3t_model *m, char *err, size_t err_len) {
    const q3t_config *c = &m->cfg;
    struct {
        const char *tok;
        int id;
    } need[] = {
        {"<|im_start|>", c->im_start_token_id}, {"<|im_end|>", c->im_end_token_id},
        {"<tts_pad>", c->tts_pad_token_id},     {"<tts_text_bos>", c->tts_bos_token_id},
        {"<tts_text_eod>", c->tts_eos_token_id},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        int32_t id = bpe_token_id(m->tok, need[i].tok);
        if (id != need[i].id)
            return ctts_err(err, err_len, CTTS_E_FORMAT,
                            "%s/tokenizer_config.json: token %s has id %d, config.json says %d",
                            c->dir, need[i].tok, id, need[i].id);
    }
    if (bpe_vocab_size(m->tok) > c->talker.text_vocab_size)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: the tokenizer has %d ids but the text embedding only %d rows",
                        c->dir, bpe_vocab_size(m->tok), c->talker.text_vocab_size);
    return CTTS_OK;
}

ctts_status q3t_model_load(const char *dir, const ctts_model_params *p, q3t_model **out,
                           char *err, size_t err_len) {
    if (!dir || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model folder given");
    *out = NULL;
    ctts_model_params mp = p ? *p : ctts_model_default_params();
    const ctts_dtype convert = quant_weight_dtype(mp.weight_type);
    if (mp.weight_type != CTTS_WEIGHTS_KEEP && convert == CTTS_DT_COUNT)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "unknown weight type %d",
                        (int)mp.weight_type);
    q3t_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    char path[Q3T_PATH_MAX + 64];
    ctts_status st = q3t_config_load(dir, &m->cfg, err, err_len);
    if (st == CTTS_OK) st = bpe_load(dir, BPE_REGEX_QWEN2, &m->tok, err, err_len);
    if (st == CTTS_OK) st = check_tokenizer(m, err, err_len);
    if (st == CTTS_OK) {
        /* A folder written by ctts quantize holds model.gguf instead. */
        snprintf(path, sizeof path, "%s/model.gguf", dir);
        if (access(path, F_OK) != 0) snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = wfile_open(&m->main, path, convert, mp.n_threads > 0 ? mp.n_threads : 2, err,
                        err_len);
    }
    if (st == CTTS_OK) {
        snprintf(path, sizeof path, "%s/speech_tokenizer/model.safetensors", dir);
        st = wfile_open(&m->codec, path, CTTS_DT_COUNT, 1, err, err_len);
    }
    if (st == CTTS_OK) {
        m->be = ctts_backend_cpu_new(mp.n_threads, (int)mp.cpu_isa);
        if (!m->be) st = ctts_err(err, err_len, CTTS_E_BACKEND, "cannot start the CPU backend");
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        m->n_threads = mp.n_threads > 0 ? mp.n_threads : online > 0 ? (int)online : 1;
        m->cpu_isa = (int)mp.cpu_isa;
    }
    if (st == CTTS_OK)
        st = q3t_talker_load(m->be, &m->cfg.talker, lookup, &m->main, &m->talker, err, err_len);
    if (st == CTTS_OK)
        st = q3t_code_predictor_load(m->be, &m->cfg.talker, lookup, &m->main, &m->cp, err,
                                     err_len);
    /* Block-quantized language model (converted now or by ctts quantize): the
     * fast mode, so the audio decoder takes BF16 products too. */
    m->codec.fast_decoder = st == CTTS_OK && block_quantized(&m->main, "talker.codec_head.weight");
    /* ... and the talker's KV cache in F16, which long utterances read each step. */
    if (st == CTTS_OK) q3t_talker_set_kv_f16(m->talker, m->codec.fast_decoder);
    if (st == CTTS_OK)
        st = q3t_speech_decoder_bind(&m->cfg.codec.dec, m->be, lookup, &m->codec, &m->sdec, err,
                                     err_len);
    if (st == CTTS_OK) { /* the decoder reads its packed copies instead */
        int n = 0;
        const ctts_tensor *const *rep = q3t_speech_decoder_replaced(m->sdec, &n);
        for (int i = 0; i < n; i++) wfile_release(&m->codec, rep[i]);
    }
    if (st == CTTS_OK && m->main.conv_st != CTTS_OK) st = m->main.conv_st; /* message in err */
    if (st != CTTS_OK && (wf_count(&m->main) || wf_count(&m->codec)) && err && err_len &&
        !strstr(err, ".safetensors") && !strstr(err, ".gguf") && !strstr(err, ".json")) {
        /* Binding messages name the tensor; add the folder it was looked up in. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "%s: %s", dir, inner);
    }
    /* Base models clone voices: their speaker encoder and the speech tokenizer's encoder. */
    const int base = m->cfg.model_type == Q3T_TYPE_BASE;
    if (st == CTTS_OK && base)
        st = q3t_speaker_encoder_bind(&m->cfg.spk, m->be, lookup, &m->main, &m->spk_enc, err,
                                      err_len);
    if (st == CTTS_OK && base && m->cfg.codec.enc.present)
        st = q3t_speech_encoder_bind(&m->cfg.codec, m->be, lookup, &m->codec, &m->senc, err,
                                     err_len);
    if (st != CTTS_OK && err && err_len && !strstr(err, ".safetensors") && !strstr(err, ".json")) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "%s: %s", dir, inner);
    }
    if (st == CTTS_OK)
        st = check_used(&m->main, "speaker_encoder.", &m->n_skipped_main, &m->n_params, err,
                        err_len);
    if (st == CTTS_OK)
        st = check_used(&m->codec, "encoder.", &m->n_skipped_codec, &m->n_params, err, err_len);
    if (st == CTTS_OK && q3t_speech_decoder_hop(m->sdec) != m->cfg.codec.decode_upsample_rate)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: speech decoder hop %d differs from decode_upsample_rate %d", dir,
                      q3t_speech_decoder_hop(m->sdec), m->cfg.codec.decode_upsample_rate);
    if (st != CTTS_OK) {
        q3t_model_free(m);
        return st;
    }
    *out = m;
    return CTTS_OK;
}

void q3t_model_free(q3t_model *m) {
    if (!m) return;
    q3t_speech_encoder_free(m->senc);
    q3t_speaker_encoder_free(m->spk_enc);
    q3t_speech_decoder_free(m->sdec);
    q3t_code_predictor_free(m->cp);
    q3t_talker_free(m->talker);
    if (m->be) m->be->destroy(m->be);
    wfile_close(&m->main);
    wfile_close(&m->codec);
    bpe_free(m->tok);
    free(m);
}

const q3t_config *q3t_model_config(const q3t_model *m) { return &m->cfg; }
const bpe_tokenizer *q3t_model_tokenizer(const q3t_model *m) { return m->tok; }
int64_t q3t_model_n_params(const q3t_model *m) { return m->n_params; }
int q3t_frame_size(const q3t_model *m) { return q3t_speech_decoder_hop(m->sdec); }
struct ctts_backend *q3t_model_backend(q3t_model *m) { return m->be; }

/* A fast-mode export: OUT/speech_tokenizer with the source folder's other
 * files copied and model.safetensors rewritten with the decoder tensors in
 * the dtype the fast modes run them in (fast_codec_dtype), so loading it
 * converts nothing. Official layout and names; the encoder stays as stored. */
static ctts_status export_codec(const q3t_model *m, const char *out_dir, char *err,
                                size_t err_len) {
    char src[Q3T_PATH_MAX + 320], dst[Q3T_PATH_MAX + 320];
    snprintf(dst, sizeof dst, "%s/speech_tokenizer", out_dir);
    unlink(dst); /* a link left by an earlier export */
    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot create '%s': %s", dst, strerror(errno));
    snprintf(src, sizeof src, "%s/speech_tokenizer", m->cfg.dir);
    DIR *d = opendir(src);
    if (!d) return ctts_err(err, err_len, CTTS_E_IO, "cannot read '%s': %s", src, strerror(errno));
    ctts_status st = CTTS_OK;
    for (struct dirent *e; st == CTTS_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "model.safetensors")) continue;
        snprintf(src, sizeof src, "%s/speech_tokenizer/%s", m->cfg.dir, e->d_name);
        snprintf(dst, sizeof dst, "%s/speech_tokenizer/%s", out_dir, e->d_name);
        struct stat sb;
        if (stat(src, &sb) == 0 && S_ISREG(sb.st_mode)) st = io_copy_file(src, dst, err, err_len);
    }
    closedir(d);
    if (st != CTTS_OK) return st;
    const int n = wf_count(&m->codec);
    ctts_tensor *t = calloc((size_t)n + 1, sizeof *t);
    void **owned = calloc((size_t)n + 1, sizeof *owned);
    if (!t || !owned) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (int i = 0; st == CTTS_OK && i < n; i++) {
        t[i] = *wf_tensor(&m->codec, i);
        int products;
        const ctts_dtype to = fast_codec_dtype(&t[i], &products);
        if (to == t[i].dtype || !quant_can_convert(&t[i], to)) continue;
        size_t bytes = 0;
        st = quant_convert(&t[i], to, 2, &owned[i], &bytes, err, err_len);
        t[i].dtype = to;
        t[i].data = owned[i];
        t[i].nbytes = bytes;
    }
    if (st == CTTS_OK) {
        snprintf(dst, sizeof dst, "%s/speech_tokenizer/model.safetensors", out_dir);
        st = st_write(dst, t, n, err, err_len);
    }
    for (int i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(t);
    return st;
}

ctts_status q3t_model_export_gguf(const q3t_model *m, const char *out_dir, char *err,
                                  size_t err_len) {
    if (!m || !out_dir) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "export: bad arguments");
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot create '%s': %s", out_dir,
                        strerror(errno));
    /* Every tensor of the main file, converted where the loader converted it. */
    const int n = wf_count(&m->main);
    const ctts_tensor **t = malloc(((size_t)n + 1) * sizeof *t);
    if (!t) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (int i = 0; i < n; i++)
        t[i] = m->main.conv[i].dtype != CTTS_DT_COUNT ? &m->main.conv[i] : wf_tensor(&m->main, i);
    char src[Q3T_PATH_MAX + 64], dst[Q3T_PATH_MAX + 64];
    const char *kv[] = {"general.architecture", "qwen3-tts"};
    snprintf(dst, sizeof dst, "%s/model.gguf", out_dir);
    ctts_status st = gguf_write(dst, t, n, kv, 1, err, err_len);
    free(t);
    /* The configs and tokenizer files as published (those present). */
    static const char *files[] = {"config.json", "generation_config.json", "vocab.json",
                                  "merges.txt", "tokenizer_config.json",
                                  "preprocessor_config.json", "tokenizer.json",
                                  "special_tokens_map.json"};
    for (size_t i = 0; st == CTTS_OK && i < sizeof files / sizeof files[0]; i++) {
        snprintf(src, sizeof src, "%s/%s", m->cfg.dir, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, files[i]);
        if (access(src, R_OK) == 0) st = io_copy_file(src, dst, err, err_len);
    }
    if (st == CTTS_OK && m->codec.fast_decoder) return export_codec(m, out_dir, err, err_len);
    /* The speech tokenizer as it is: a link to the source folder. */
    if (st == CTTS_OK) {
        snprintf(src, sizeof src, "%s/speech_tokenizer", m->cfg.dir);
        snprintf(dst, sizeof dst, "%s/speech_tokenizer", out_dir);
        char *abs = realpath(src, NULL);
        if (!abs) return ctts_err(err, err_len, CTTS_E_IO, "cannot resolve '%s'", src);
        unlink(dst); /* a link left by an earlier export */
        if (symlink(abs, dst) != 0)
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot link '%s' to '%s': %s", dst, abs,
                          strerror(errno));
        free(abs);
    }
    return st;
}

const q3t_speaker_encoder *q3t_model_speaker_encoder(const q3t_model *m) { return m->spk_enc; }
const q3t_talker *q3t_model_talker(const q3t_model *m) { return m->talker; }
const q3t_code_predictor *q3t_model_code_predictor(const q3t_model *m) { return m->cp; }
const q3t_speech_decoder *q3t_model_speech_decoder(const q3t_model *m) { return m->sdec; }
int q3t_model_threads(const q3t_model *m, int *cpu_isa) {
    if (cpu_isa) *cpu_isa = m->cpu_isa;
    return m->n_threads;
}
const q3t_speech_encoder *q3t_model_speech_encoder(const q3t_model *m) { return m->senc; }

static const char *type_name(q3t_model_type t) {
    return t == Q3T_TYPE_BASE ? "base" : t == Q3T_TYPE_VOICE_DESIGN ? "voice_design" : "custom_voice";
}

size_t q3t_model_describe(const q3t_model *m, char *buf, size_t len) {
    size_t w = 0;
    if (!buf) len = 0;
    if (len) buf[0] = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int k_ = snprintf(len > w ? buf + w : NULL, len > w ? len - w : 0, __VA_ARGS__);           \
        if (k_ > 0) w += (size_t)k_;                                                               \
    } while (0)
    const q3t_config *c = &m->cfg;
    const q3t_decoder_config *t = &c->talker.dec, *p = &c->talker.cp;
    APPEND("family: qwen3tts (Qwen3-TTS-12Hz %s, size %s)\n", type_name(c->model_type),
           c->model_size);
    APPEND("folder: %s\n", c->dir);
    APPEND("talker: hidden %d, %d layers, %d heads / %d kv, head_dim %d, ffn %d, codec vocab %d, "
           "text vocab %d x %d, rope theta %g\n", t->hidden_size, t->num_hidden_layers,
           t->num_attention_heads, t->num_key_value_heads, t->head_dim, t->intermediate_size,
           t->vocab_size, c->talker.text_vocab_size, c->talker.text_hidden_size,
           (double)t->rope_theta);
    APPEND("code predictor: hidden %d, %d layers, %d heads / %d kv, head_dim %d, %d code groups\n",
           p->hidden_size, p->num_hidden_layers, p->num_attention_heads, p->num_key_value_heads,
           p->head_dim, p->num_code_groups);
    const q3t_codec_decoder_config *d = &c->codec.dec;
    APPEND("speech decoder: %d codebooks x %d, latent %d, decoder dim %d, transformer %d x %d "
           "layers (window %d), %d samples per frame at %d Hz\n", d->num_quantizers,
           d->codebook_size, d->latent_dim, d->decoder_dim, d->hidden_size, d->num_hidden_layers,
           d->sliding_window, c->codec.decode_upsample_rate, c->codec.output_sample_rate);
    APPEND("speakers:");
    for (int i = 0; i < c->talker.n_speakers; i++)
        APPEND(" %s%s%s%s", c->talker.speakers[i].name, c->talker.speakers[i].dialect[0] ? " (" : "",
               c->talker.speakers[i].dialect, c->talker.speakers[i].dialect[0] ? ")" : "");
    APPEND("%s\nlanguages: auto", c->talker.n_speakers ? "" : " none (voice cloning)");
    for (int i = 0; i < c->talker.n_languages; i++)
        if (!strstr(c->talker.languages[i].name, "dialect"))
            APPEND(", %s", c->talker.languages[i].name);
    APPEND("\ngeneration defaults: %s, temperature %g, top_k %d, top_p %g, repetition_penalty %g, "
           "max_new_tokens %d\n", c->gen.do_sample ? "sampling" : "greedy",
           (double)c->gen.temperature, c->gen.top_k, (double)c->gen.top_p,
           (double)c->gen.repetition_penalty, c->gen.max_new_tokens);
    APPEND("tokenizer: %d ids, %d merges\n", bpe_vocab_size(m->tok), bpe_n_merges(m->tok));
    APPEND("parameters: %lld in use (model.safetensors %d tensors, speech_tokenizer %d tensors; "
           "not used here: %d speaker-encoder, %d codec-encoder tensors)\n",
           (long long)m->n_params, wf_count(&m->main), wf_count(&m->codec),
           m->n_skipped_main, m->n_skipped_codec);
#undef APPEND
    return w;
}

ctts_status q3t_tokenize(const q3t_model *m, const char *text, int prepared, int32_t **ids,
                         size_t *n, char *err, size_t err_len) {
    if (!m || !text || !ids || !n)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "tokenize: missing argument");
    if (prepared) return q3t_prompt_ids(m->tok, text, strlen(text), ids, n, err, err_len);
    return bpe_encode(m->tok, text, strlen(text), ids, n, err, err_len);
}

ctts_gen_params q3t_default_gen_params(const q3t_model *m) {
    ctts_gen_params p;
    memset(&p, 0, sizeof p);
    const q3t_generation_config *g = &m->cfg.gen;
    p.seed = 0;
    p.temperature = g->do_sample ? g->temperature : 0.0f;
    p.top_k = g->top_k;
    p.top_p = g->top_p;
    p.repetition_penalty = g->repetition_penalty;
    p.max_new_tokens = g->max_new_tokens;
    /* Pocket-only fields keep Pocket's documented defaults (ignored here). */
    p.lsd_steps = 1;
    p.eos_threshold = -4.0f;
    p.frames_after_eos = -1;
    p.max_tokens_per_chunk = 50;
    p.speaker = NULL;
    p.language = NULL;
    p.text_mode = CTTS_TEXT_MODE_AUTO;
    return p;
}

/* ---- voices ---- */

ctts_status q3t_voice_new(const q3t_model *m, const float *xvector, const int32_t *ref_codes,
                          int n_ref_frames, const char *ref_text, q3t_voice **out, char *err,
                          size_t err_len) {
    if (!m || !xvector || !out || n_ref_frames < 0 || (n_ref_frames && !ref_codes))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice: bad argument");
    *out = NULL;
    if (n_ref_frames && !ref_text)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "voice: reference codes need the reference transcript");
    const int D = m->cfg.talker.dec.hidden_size, G = m->cfg.talker.dec.num_code_groups;
    const int K = m->cfg.talker.cp.vocab_size;
    for (int i = 0; i < D; i++)
        if (!isfinite(xvector[i]))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice: x-vector value %d is not "
                            "finite", i);
    for (int i = 0; i < n_ref_frames * G; i++)
        if (ref_codes[i] < 0 || ref_codes[i] >= K)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "voice: reference code %d of frame %d is %d, outside [0, %d)", i % G,
                            i / G, ref_codes[i], K);
    q3t_voice *v = calloc(1, sizeof *v);
    if (!v) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    v->xvector = malloc((size_t)D * sizeof *v->xvector);
    if (n_ref_frames) v->ref_codes = malloc((size_t)n_ref_frames * G * sizeof *v->ref_codes);
    if (ref_text) v->ref_text = strdup(ref_text);
    if (!v->xvector || (n_ref_frames && !v->ref_codes) || (ref_text && !v->ref_text)) {
        q3t_voice_free(v);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    memcpy(v->xvector, xvector, (size_t)D * sizeof *v->xvector);
    if (n_ref_frames)
        memcpy(v->ref_codes, ref_codes, (size_t)n_ref_frames * G * sizeof *v->ref_codes);
    v->n_ref_frames = n_ref_frames;
    v->dim = D;
    v->groups = G;
    *out = v;
    return CTTS_OK;
}

void q3t_voice_free(q3t_voice *v) {
    if (!v) return;
    free(v->xvector);
    free(v->ref_codes);
    free(v->ref_text);
    free(v);
}

/* ---- stream ---- */
