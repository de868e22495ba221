/*
 * Qwen3-TTS-12Hz config: config.json, generation_config.json and
 * speech_tokenizer/config.json -> q3t_config (QWEN3TTS_NOTES.md §1).
 *
 * Hugging Face configs carry many fields the model code never reads
 * (initializer_range, use_cache, ...), so unknown keys are accepted. What the
 * model needs is strict: a missing field, a wrong JSON type or a value out of
 * range is an error "<file>: '<path.to.field>' ...". Fields the official
 * classes default when absent get the official defaults. Cross-field checks
 * (heads divisible by KV heads, codec ids inside the vocabulary, ...) are
 * done here so the model code can trust the struct.
 */
#include "models/qwen3tts/q3t_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/json.h"

typedef struct {
    const char *name; /* file for messages */
    char *err;
    size_t err_len;
} ctx_t;

static ctts_status need_object(ctx_t *c, const json_value *v, const char *where) {
    if (!v || v->type != JSON_OBJECT)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s' must be an object", c->name,
                        where);
    return CTTS_OK;
}

static const char *dot(const char *where) { return *where ? "." : ""; }

static ctts_status get_int(ctx_t *c, const json_value *obj, const char *where, const char *key,
                           int required, int def, int lo, int hi, int *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing field '%s%s%s'",
                            c->name, where, dot(where), key);
        *out = def;
        return CTTS_OK;
    }
    /* HF writes some integers as 1e6-style floats (rope_theta); accept exact integral values. */
    double d = v->type == JSON_NUMBER ? v->number : 0.5;
    if (v->type != JSON_NUMBER || d != (double)(long long)d || d < lo || d > hi)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s%s%s' must be an integer in [%d, %d]", c->name, where, dot(where),
                        key, lo, hi);
    *out = (int)d;
    return CTTS_OK;
}

static ctts_status get_float(ctx_t *c, const json_value *obj, const char *where, const char *key,
                             int required, float def, double lo, double hi, float *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing field '%s%s%s'",
                            c->name, where, dot(where), key);
        *out = def;
        return CTTS_OK;
    }
    if (v->type != JSON_NUMBER || !(v->number >= lo && v->number <= hi))
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s%s%s' must be a number in [%g, %g]", c->name, where, dot(where),
                        key, lo, hi);
    *out = (float)v->number;
    return CTTS_OK;
}

static ctts_status get_bool(ctx_t *c, const json_value *obj, const char *where, const char *key,
                            int def, int *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        *out = def;
        return CTTS_OK;
    }
    if (v->type != JSON_BOOL)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s%s%s' must be true or false",
                        c->name, where, dot(where), key);
    *out = v->boolean;
    return CTTS_OK;
}

static ctts_status get_str(ctx_t *c, const json_value *obj, const char *where, const char *key,
                           int required, const char *def, char *out, size_t cap) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing field '%s%s%s'",
                            c->name, where, dot(where), key);
        snprintf(out, cap, "%s", def);
        return CTTS_OK;
    }
    if (v->type != JSON_STRING || v->length >= cap || strlen(v->string) != v->length)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s%s%s' must be a string shorter than %zu bytes", c->name, where,
                        dot(where), key, cap);
    memcpy(out, v->string, v->length + 1);
    return CTTS_OK;
}

/* Array of integers in [lo, hi] with 1..cap entries. */
static ctts_status get_int_array(ctx_t *c, const json_value *obj, const char *where,
                                 const char *key, int required, int *out, int cap, int *n,
                                 int lo, int hi) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing field '%s%s%s'",
                            c->name, where, dot(where), key);
        *n = 0;
        return CTTS_OK;
    }
    if (v->type != JSON_ARRAY || v->length == 0 || v->length > (size_t)cap)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s%s%s' must be an array of 1..%d integers", c->name, where,
                        dot(where), key, cap);
    for (size_t i = 0; i < v->length; i++) {
        const json_value *e = &v->items[i];
        if (e->type != JSON_NUMBER || !e->is_integer || e->integer < lo || e->integer > hi)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                            "%s: '%s%s%s[%zu]' must be an integer in [%d, %d]", c->name, where,
                            dot(where), key, i, lo, hi);
        out[i] = (int)e->integer;
    }
    *n = (int)v->length;
    return CTTS_OK;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        ctts_status st_ = (x);                                                                     \
        if (st_ != CTTS_OK) return st_;                                                            \
    } while (0)

#define BIG 1000000000

static ctts_status parse_decoder(ctx_t *c, const json_value *o, const char *where,
                                 q3t_decoder_config *d) {
    TRY(need_object(c, o, where));
    TRY(get_int(c, o, where, "hidden_size", 1, 0, 1, 1 << 16, &d->hidden_size));
    TRY(get_int(c, o, where, "intermediate_size", 1, 0, 1, 1 << 20, &d->intermediate_size));
    TRY(get_int(c, o, where, "num_hidden_layers", 1, 0, 1, 1024, &d->num_hidden_layers));
    TRY(get_int(c, o, where, "num_attention_heads", 1, 0, 1, 1024, &d->num_attention_heads));
    TRY(get_int(c, o, where, "num_key_value_heads", 1, 0, 1, 1024, &d->num_key_value_heads));
    TRY(get_int(c, o, where, "head_dim", 1, 0, 2, 4096, &d->head_dim));
    TRY(get_float(c, o, where, "rms_norm_eps", 1, 0, 0, 1, &d->rms_norm_eps));
    TRY(get_float(c, o, where, "rope_theta", 1, 0, 1, 1e12, &d->rope_theta));
    TRY(get_int(c, o, where, "max_position_embeddings", 0, 32768, 1, BIG,
                &d->max_position_embeddings));
    TRY(get_int(c, o, where, "vocab_size", 1, 0, 1, BIG, &d->vocab_size));
    TRY(get_int(c, o, where, "num_code_groups", 0, 16, 2, 64, &d->num_code_groups));
    if (d->num_attention_heads % d->num_key_value_heads)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s.num_attention_heads' (%d) must be a multiple of "
                        "num_key_value_heads (%d)", c->name, where, d->num_attention_heads,
                        d->num_key_value_heads);
    if (d->head_dim % 2)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s.head_dim' must be even",
                        c->name, where);
    const json_value *act = json_get(o, "hidden_act");
    if (act && act->type != JSON_NULL &&
        (act->type != JSON_STRING || strcmp(act->string, "silu") != 0))
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: '%s.hidden_act' must be \"silu\"", c->name, where);
    int b = 0;
    TRY(get_bool(c, o, where, "attention_bias", 0, &b));
    if (b)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: '%s.attention_bias' true is not supported", c->name, where);
    TRY(get_bool(c, o, where, "use_sliding_window", 0, &b));
    if (b)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: '%s.use_sliding_window' true is not supported", c->name, where);
    return CTTS_OK;
}

static void lower(char *s) {
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

static ctts_status parse_name_table(ctx_t *c, const json_value *o, const char *where, int vocab,
                                    q3t_named_id *out, int cap, int *n) {
    TRY(need_object(c, o, where));
    if (o->length > (size_t)cap)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED, "%s: '%s' has more than %d entries",
                        c->name, where, cap);
    for (size_t i = 0; i < o->length; i++) {
        const json_value *v = &o->items[i];
        if (o->key_lengths[i] == 0 || o->key_lengths[i] >= Q3T_NAME_MAX)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s' has a bad name",
                            c->name, where);
        if (v->type != JSON_NUMBER || !v->is_integer || v->integer < 0 || v->integer >= vocab)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                            "%s: '%s.%s' must be a codec id in [0, %d)", c->name, where,
                            o->keys[i], vocab);
        memcpy(out[i].name, o->keys[i], o->key_lengths[i] + 1);
        lower(out[i].name);
        out[i].id = (int)v->integer;
    }
    *n = (int)o->length;
    return CTTS_OK;
}

static ctts_status parse_talker(ctx_t *c, const json_value *o, q3t_talker_config *t) {
    const char *W = "talker_config";
    TRY(need_object(c, o, W));
    TRY(parse_decoder(c, o, W, &t->dec));
    const int V = t->dec.vocab_size;
    TRY(get_int(c, o, W, "text_vocab_size", 1, 0, 1, BIG, &t->text_vocab_size));
    TRY(get_int(c, o, W, "text_hidden_size", 1, 0, 1, 1 << 16, &t->text_hidden_size));
    const json_value *rs = json_get(o, "rope_scaling");
    if (rs && rs->type != JSON_NULL) {
        TRY(need_object(c, rs, "talker_config.rope_scaling"));
        int n = 0;
        TRY(get_int_array(c, rs, "talker_config.rope_scaling", "mrope_section", 0,
                          t->mrope_section, 3, &n, 0, 1 << 16));
        if (n && n != 3)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                            "%s: 'talker_config.rope_scaling.mrope_section' must have 3 entries",
                            c->name);
        if (n && t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2] !=
                     t->dec.head_dim / 2)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                            "%s: 'talker_config.rope_scaling.mrope_section' must sum to "
                            "head_dim/2 = %d", c->name, t->dec.head_dim / 2);
        TRY(get_bool(c, rs, "talker_config.rope_scaling", "interleaved", 0,
                     &t->mrope_interleaved));
        char type[32];
        TRY(get_str(c, rs, "talker_config.rope_scaling", "rope_type", 0, "default", type,
                    sizeof type));
        if (strcmp(type, "default") != 0)
            return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                            "%s: 'talker_config.rope_scaling.rope_type' \"%s\" is not supported",
                            c->name, type);
    }
    struct {
        const char *key;
        int *out;
    } ids[] = {
        {"codec_pad_id", &t->codec_pad_id},         {"codec_bos_id", &t->codec_bos_id},
        {"codec_eos_token_id", &t->codec_eos_token_id}, {"codec_think_id", &t->codec_think_id},
        {"codec_nothink_id", &t->codec_nothink_id}, {"codec_think_bos_id", &t->codec_think_bos_id},
        {"codec_think_eos_id", &t->codec_think_eos_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        TRY(get_int(c, o, W, ids[i].key, 1, 0, 0, V - 1, ids[i].out));
    TRY(parse_name_table(c, json_get(o, "codec_language_id"), "talker_config.codec_language_id", V,
                         t->languages, Q3T_MAX_LANGS, &t->n_languages));
    const json_value *spk = json_get(o, "spk_id");
    if (spk && spk->type != JSON_NULL) {
        q3t_named_id tmp[Q3T_MAX_SPEAKERS];
        TRY(parse_name_table(c, spk, "talker_config.spk_id", V, tmp, Q3T_MAX_SPEAKERS,
                             &t->n_speakers));
        for (int i = 0; i < t->n_speakers; i++) {
            memcpy(t->speakers[i].name, tmp[i].name, sizeof tmp[i].name);
            t->speakers[i].id = tmp[i].id;
            t->speakers[i].dialect[0] = 0;
        }
        const json_value *dia = json_get(o, "spk_is_dialect");
        if (dia && dia->type != JSON_NULL) {
            TRY(need_object(c, dia, "talker_config.spk_is_dialect"));
            for (size_t i = 0; i < dia->length; i++) {
                const json_value *v = &dia->items[i];
                char key[Q3T_NAME_MAX];
                snprintf(key, sizeof key, "%s", dia->keys[i]);
                lower(key);
                q3t_speaker *s = NULL;
                for (int k = 0; k < t->n_speakers; k++)
                    if (strcmp(t->speakers[k].name, key) == 0) s = &t->speakers[k];
                if (!s)
                    return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                                    "%s: 'talker_config.spk_is_dialect.%s' names no speaker of "
                                    "spk_id", c->name, dia->keys[i]);
                if (v->type == JSON_BOOL && !v->boolean) continue;
                if (v->type != JSON_STRING || v->length >= Q3T_NAME_MAX)
                    return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                                    "%s: 'talker_config.spk_is_dialect.%s' must be false or a "
                                    "dialect name", c->name, dia->keys[i]);
                snprintf(s->dialect, sizeof s->dialect, "%s", v->string);
                lower(s->dialect);
                int found = 0;
                for (int k = 0; k < t->n_languages; k++)
                    if (strcmp(t->languages[k].name, s->dialect) == 0) found = 1;
                if (!found)
                    return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                                    "%s: 'talker_config.spk_is_dialect.%s' = \"%s\" is not in "
                                    "codec_language_id", c->name, dia->keys[i], v->string);
            }
        }
    }
    TRY(parse_decoder(c, json_get(o, "code_predictor_config"), "talker_config.code_predictor_config",
                      &t->cp));
    if (t->cp.num_code_groups != t->dec.num_code_groups)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: code_predictor_config.num_code_groups (%d) differs from "
                        "talker_config.num_code_groups (%d)", c->name, t->cp.num_code_groups,
                        t->dec.num_code_groups);
    /* The talker's first codebook shares the audio-code range with the predictor's. */
    if (t->cp.vocab_size > V)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: code_predictor_config.vocab_size (%d) exceeds talker vocab_size (%d)",
                        c->name, t->cp.vocab_size, V);
    return CTTS_OK;
}

static ctts_status parse_speaker_encoder(ctx_t *c, const json_value *o,
                                         q3t_speaker_encoder_config *s) {
    const char *W = "speaker_encoder_config";
    TRY(need_object(c, o, W));
    s->present = 1;
    TRY(get_int(c, o, W, "mel_dim", 0, 128, 1, 4096, &s->mel_dim));
    TRY(get_int(c, o, W, "enc_dim", 0, 1024, 1, 1 << 16, &s->enc_dim));
    TRY(get_int_array(c, o, W, "enc_channels", 0, s->enc_channels, 8, &s->n_enc_channels, 1,
                      1 << 16));
    TRY(get_int_array(c, o, W, "enc_kernel_sizes", 0, s->enc_kernel_sizes, 8,
                      &s->n_enc_kernel_sizes, 1, 64));
    TRY(get_int_array(c, o, W, "enc_dilations", 0, s->enc_dilations, 8, &s->n_enc_dilations, 1,
                      64));
    /* Official defaults (Qwen3TTSSpeakerEncoderConfig). */
    static const int ch[5] = {512, 512, 512, 512, 1536}, ks[5] = {5, 3, 3, 3, 1},
                     dl[5] = {1, 2, 3, 4, 1};
    if (!s->n_enc_channels) memcpy(s->enc_channels, ch, sizeof ch), s->n_enc_channels = 5;
    if (!s->n_enc_kernel_sizes) memcpy(s->enc_kernel_sizes, ks, sizeof ks), s->n_enc_kernel_sizes = 5;
    if (!s->n_enc_dilations) memcpy(s->enc_dilations, dl, sizeof dl), s->n_enc_dilations = 5;
    if (s->n_enc_channels != s->n_enc_kernel_sizes || s->n_enc_channels != s->n_enc_dilations)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: speaker_encoder_config enc_channels / enc_kernel_sizes / "
                        "enc_dilations must have the same length", c->name);
    TRY(get_int(c, o, W, "enc_attention_channels", 0, 128, 1, 1 << 16,
                &s->enc_attention_channels));
    TRY(get_int(c, o, W, "enc_res2net_scale", 0, 8, 1, 64, &s->enc_res2net_scale));
    TRY(get_int(c, o, W, "enc_se_channels", 0, 128, 1, 1 << 16, &s->enc_se_channels));
    TRY(get_int(c, o, W, "sample_rate", 0, 24000, 1, 1000000, &s->sample_rate));
    return CTTS_OK;
}

ctts_status q3t_config_parse_main(const char *json, size_t len, const char *name, q3t_config *out,
                                  char *err, size_t err_len) {
    ctx_t c = {.name = name, .err = err, .err_len = err_len};
    memset(out, 0, sizeof *out);
    char perr[256];
    json_value *root = json_parse(json, len, perr, sizeof perr);
    if (!root) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: %s", name, perr);
    ctts_status st = need_object(&c, root, "(top level)");
    char type[32] = "";
    if (st == CTTS_OK) st = get_str(&c, root, "", "tts_model_type", 1, "", type, sizeof type);
    if (st == CTTS_OK) {
        if (strcmp(type, "custom_voice") == 0) out->model_type = Q3T_TYPE_CUSTOM_VOICE;
        else if (strcmp(type, "base") == 0) out->model_type = Q3T_TYPE_BASE;
        else if (strcmp(type, "voice_design") == 0) out->model_type = Q3T_TYPE_VOICE_DESIGN;
        else
            st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                          "%s: 'tts_model_type' \"%s\" is not one of custom_voice, base, "
                          "voice_design", name, type);
    }
    if (st == CTTS_OK)
        st = get_str(&c, root, "", "tts_model_size", 0, "0b6", out->model_size,
                     sizeof out->model_size);
    if (st == CTTS_OK) {
        char tt[64];
        st = get_str(&c, root, "", "tokenizer_type", 0, "qwen3_tts_tokenizer_12hz", tt, sizeof tt);
        if (st == CTTS_OK && strcmp(tt, "qwen3_tts_tokenizer_12hz") != 0)
            st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                          "%s: 'tokenizer_type' \"%s\" is not supported (only "
                          "qwen3_tts_tokenizer_12hz)", name, tt);
    }
    struct {
        const char *key;
        int *out, required, def;
    } ids[] = {
        {"im_start_token_id", &out->im_start_token_id, 0, 151644},
        {"im_end_token_id", &out->im_end_token_id, 0, 151645},
        {"assistant_token_id", &out->assistant_token_id, 0, 77091},
        {"tts_pad_token_id", &out->tts_pad_token_id, 1, 0},
        {"tts_bos_token_id", &out->tts_bos_token_id, 1, 0},
        {"tts_eos_token_id", &out->tts_eos_token_id, 1, 0},
    };
    for (size_t i = 0; st == CTTS_OK && i < sizeof ids / sizeof ids[0]; i++)
        st = get_int(&c, root, "", ids[i].key, ids[i].required, ids[i].def, 0, BIG, ids[i].out);
    if (st == CTTS_OK) st = parse_talker(&c, json_get(root, "talker_config"), &out->talker);
    if (st == CTTS_OK) {
        const int tv = out->talker.text_vocab_size;
        if (out->tts_pad_token_id >= tv || out->tts_bos_token_id >= tv ||
            out->tts_eos_token_id >= tv)
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: tts_pad/bos/eos_token_id must be below talker_config."
                          "text_vocab_size (%d)", name, tv);
    }
    const json_value *se = json_get(root, "speaker_encoder_config");
    if (st == CTTS_OK && se && se->type != JSON_NULL)
        st = parse_speaker_encoder(&c, se, &out->spk);
    if (st == CTTS_OK && out->model_type == Q3T_TYPE_CUSTOM_VOICE && out->talker.n_speakers == 0)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: a custom_voice model needs 'talker_config.spk_id'", name);
    if (st == CTTS_OK && out->model_type == Q3T_TYPE_BASE && !out->spk.present)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: a base model needs 'speaker_encoder_config'", name);
    if (st == CTTS_OK && out->spk.present && out->spk.enc_dim != out->talker.dec.hidden_size)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: speaker_encoder_config.enc_dim (%d) must equal talker hidden_size (%d)",
                      name, out->spk.enc_dim, out->talker.dec.hidden_size);
    json_free(root);
    return st;
}

static ctts_status parse_generation(ctx_t *c, const json_value *o, q3t_generation_config *g) {
    const char *W = "";
    TRY(need_object(c, o, "(top level)"));
    TRY(get_bool(c, o, W, "do_sample", 1, &g->do_sample));
    TRY(get_float(c, o, W, "temperature", 0, 0.9f, 0, 1e6, &g->temperature));
    TRY(get_int(c, o, W, "top_k", 0, 50, 0, BIG, &g->top_k));
    TRY(get_float(c, o, W, "top_p", 0, 1.0f, 0, 1, &g->top_p));
    TRY(get_float(c, o, W, "repetition_penalty", 0, 1.05f, 1e-6, 1e6, &g->repetition_penalty));
    TRY(get_bool(c, o, W, "subtalker_dosample", 1, &g->subtalker_dosample));
    TRY(get_float(c, o, W, "subtalker_temperature", 0, 0.9f, 0, 1e6, &g->subtalker_temperature));
    TRY(get_int(c, o, W, "subtalker_top_k", 0, 50, 0, BIG, &g->subtalker_top_k));
    TRY(get_float(c, o, W, "subtalker_top_p", 0, 1.0f, 0, 1, &g->subtalker_top_p));
    /* The wrapper's hard default when the config lacks it is 2048 (NOTES §6). */
    TRY(get_int(c, o, W, "max_new_tokens", 0, 2048, 1, BIG, &g->max_new_tokens));
    return CTTS_OK;
}

static void generation_defaults(q3t_generation_config *g) {
    g->do_sample = 1;
    g->temperature = 0.9f;
    g->top_k = 50;
    g->top_p = 1.0f;
    g->repetition_penalty = 1.05f;
    g->subtalker_dosample = 1;
    g->subtalker_temperature = 0.9f;
    g->subtalker_top_k = 50;
    g->subtalker_top_p = 1.0f;
    g->max_new_tokens = 2048;
}

static ctts_status parse_codec_decoder(ctx_t *c, const json_value *o, q3t_codec_decoder_config *d) {
    const char *W = "decoder_config";
    TRY(need_object(c, o, W));
    TRY(get_int(c, o, W, "latent_dim", 1, 0, 1, 1 << 16, &d->latent_dim));
    TRY(get_int(c, o, W, "codebook_dim", 1, 0, 1, 1 << 16, &d->codebook_dim));
    TRY(get_int(c, o, W, "codebook_size", 0, 2048, 1, 1 << 20, &d->codebook_size));
    TRY(get_int(c, o, W, "decoder_dim", 1, 0, 1, 1 << 16, &d->decoder_dim));
    TRY(get_int(c, o, W, "hidden_size", 1, 0, 1, 1 << 16, &d->hidden_size));
    TRY(get_int(c, o, W, "intermediate_size", 1, 0, 1, 1 << 20, &d->intermediate_size));
    TRY(get_int(c, o, W, "head_dim", 1, 0, 2, 4096, &d->head_dim));
    TRY(get_int(c, o, W, "num_attention_heads", 1, 0, 1, 1024, &d->num_attention_heads));
    TRY(get_int(c, o, W, "num_key_value_heads", 1, 0, 1, 1024, &d->num_key_value_heads));
    TRY(get_int(c, o, W, "num_hidden_layers", 1, 0, 1, 1024, &d->num_hidden_layers));
    TRY(get_int(c, o, W, "num_quantizers", 0, 16, 1, 64, &d->num_quantizers));
    TRY(get_int(c, o, W, "num_semantic_quantizers", 0, 1, 0, 64, &d->num_semantic_quantizers));
    TRY(get_float(c, o, W, "rms_norm_eps", 0, 1e-5f, 0, 1, &d->rms_norm_eps));
    TRY(get_float(c, o, W, "rope_theta", 0, 10000.0f, 1, 1e12, &d->rope_theta));
    TRY(get_float(c, o, W, "layer_scale_initial_scale", 0, 0.01f, -1e6, 1e6,
                  &d->layer_scale_initial_scale));
    TRY(get_int(c, o, W, "max_position_embeddings", 0, 8000, 1, BIG,
                &d->max_position_embeddings));
    TRY(get_int(c, o, W, "sliding_window", 0, 72, 1, BIG, &d->sliding_window));
    TRY(get_int_array(c, o, W, "upsample_rates", 1, d->upsample_rates, Q3T_MAX_RATES,
                      &d->n_upsample_rates, 1, 64));
    TRY(get_int_array(c, o, W, "upsampling_ratios", 1, d->upsampling_ratios, Q3T_MAX_RATES,
                      &d->n_upsampling_ratios, 1, 64));
    if (d->num_attention_heads % d->num_key_value_heads)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: 'decoder_config.num_attention_heads' must be a multiple of "
                        "num_key_value_heads", c->name);
    if (d->num_semantic_quantizers > d->num_quantizers)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: 'decoder_config.num_semantic_quantizers' exceeds num_quantizers",
                        c->name);
    return CTTS_OK;
}

static ctts_status parse_codec_encoder(ctx_t *c, const json_value *o, q3t_codec_encoder_config *e) {
    const char *W = "encoder_config";
    TRY(need_object(c, o, W));
    e->present = 1;
    TRY(get_int(c, o, W, "hidden_size", 0, 512, 1, 1 << 16, &e->hidden_size));
    TRY(get_int(c, o, W, "num_filters", 0, 64, 1, 1 << 16, &e->num_filters));
    TRY(get_int(c, o, W, "num_residual_layers", 0, 1, 1, 64, &e->num_residual_layers));
    TRY(get_int_array(c, o, W, "upsampling_ratios", 0, e->upsampling_ratios, Q3T_MAX_RATES,
                      &e->n_upsampling_ratios, 1, 64));
    if (!e->n_upsampling_ratios) {
        static const int r[4] = {8, 6, 5, 4};
        memcpy(e->upsampling_ratios, r, sizeof r);
        e->n_upsampling_ratios = 4;
    }
    TRY(get_int(c, o, W, "kernel_size", 0, 7, 1, 64, &e->kernel_size));
    TRY(get_int(c, o, W, "last_kernel_size", 0, 3, 1, 64, &e->last_kernel_size));
    TRY(get_int(c, o, W, "residual_kernel_size", 0, 3, 1, 64, &e->residual_kernel_size));
    TRY(get_int(c, o, W, "dilation_growth_rate", 0, 2, 1, 64, &e->dilation_growth_rate));
    TRY(get_int(c, o, W, "compress", 0, 2, 1, 64, &e->compress));
    TRY(get_int(c, o, W, "codebook_size", 0, 2048, 1, 1 << 20, &e->codebook_size));
    TRY(get_int(c, o, W, "codebook_dim", 0, 256, 1, 1 << 16, &e->codebook_dim));
    TRY(get_int(c, o, W, "num_quantizers", 0, 32, 1, 256, &e->num_quantizers));
    TRY(get_int(c, o, W, "num_semantic_quantizers", 0, 1, 0, 256, &e->num_semantic_quantizers));
    TRY(get_int(c, o, W, "num_hidden_layers", 0, 8, 0, 1024, &e->num_hidden_layers));
    TRY(get_int(c, o, W, "intermediate_size", 0, 2048, 1, 1 << 20, &e->intermediate_size));
    TRY(get_int(c, o, W, "num_attention_heads", 0, 8, 1, 1024, &e->num_attention_heads));
    TRY(get_int(c, o, W, "num_key_value_heads", 0, e->num_attention_heads, 1, 1024,
                &e->num_key_value_heads));
    TRY(get_int(c, o, W, "head_dim", 0, e->hidden_size / e->num_attention_heads, 1, 4096,
                &e->head_dim));
    TRY(get_float(c, o, W, "norm_eps", 0, 1e-5f, 0, 1, &e->norm_eps));
    TRY(get_float(c, o, W, "rope_theta", 0, 10000.0f, 1, 1e12, &e->rope_theta));
    TRY(get_float(c, o, W, "layer_scale_initial_scale", 0, 0.01f, -1e6, 1e6,
                  &e->layer_scale_initial_scale));
    TRY(get_int(c, o, W, "sliding_window", 0, 250, 1, BIG, &e->sliding_window));
    TRY(get_bool(c, o, W, "use_conv_shortcut", 0, &e->use_conv_shortcut));
    char pad[32];
    TRY(get_str(c, o, W, "pad_mode", 0, "constant", pad, sizeof pad));
    if (strcmp(pad, "constant") == 0) e->pad_mode_replicate = 0;
    else if (strcmp(pad, "replicate") == 0) e->pad_mode_replicate = 1;
    else
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: 'encoder_config.pad_mode' \"%s\" is not supported", c->name, pad);
    return CTTS_OK;
}

static ctts_status parse_codec(ctx_t *c, const json_value *o, q3t_codec_config *k) {
    const char *W = "";
    TRY(need_object(c, o, "(top level)"));
    char mt[64];
    TRY(get_str(c, o, W, "model_type", 0, "qwen3_tts_tokenizer_12hz", mt, sizeof mt));
    if (strcmp(mt, "qwen3_tts_tokenizer_12hz") != 0)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: 'model_type' \"%s\" is not supported (only qwen3_tts_tokenizer_12hz)",
                        c->name, mt);
    TRY(get_int(c, o, W, "input_sample_rate", 0, 24000, 1, 1000000, &k->input_sample_rate));
    TRY(get_int(c, o, W, "output_sample_rate", 0, 24000, 1, 1000000, &k->output_sample_rate));
    TRY(get_int(c, o, W, "decode_upsample_rate", 0, 1920, 1, 1 << 20, &k->decode_upsample_rate));
    TRY(get_int(c, o, W, "encode_downsample_rate", 0, 1920, 1, 1 << 20,
                &k->encode_downsample_rate));
    TRY(get_int(c, o, W, "encoder_valid_num_quantizers", 0, 16, 1, 256,
                &k->encoder_valid_num_quantizers));
    TRY(parse_codec_decoder(c, json_get(o, "decoder_config"), &k->dec));
    const json_value *e = json_get(o, "encoder_config");
    if (e && e->type != JSON_NULL) TRY(parse_codec_encoder(c, e, &k->enc));
    int up = 1;
    for (int i = 0; i < k->dec.n_upsample_rates; i++) up *= k->dec.upsample_rates[i];
    for (int i = 0; i < k->dec.n_upsampling_ratios; i++) up *= k->dec.upsampling_ratios[i];
    if (up != k->decode_upsample_rate)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: decoder upsample_rates x upsampling_ratios = %d, but "
                        "decode_upsample_rate is %d", c->name, up, k->decode_upsample_rate);
    return CTTS_OK;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_len,
                       ctts_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = ctts_err(err, err_len, CTTS_E_IO, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                *st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *st = ctts_err(err, err_len, CTTS_E_IO, "%s: read error", path);
        return NULL;
    }
    *len = n;
    *st = CTTS_OK;
    return buf;
}

ctts_status q3t_config_load(const char *dir, q3t_config *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model folder given");
    char path[Q3T_PATH_MAX + 64];
    if (strlen(dir) >= Q3T_PATH_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model path too long");
    ctts_status st;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_file(path, &len, err, err_len, &st);
    if (!text) return st;
    st = q3t_config_parse_main(text, len, path, out, err, err_len);
    free(text);
    if (st != CTTS_OK) return st;
    snprintf(out->dir, sizeof out->dir, "%s", dir);

    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    generation_defaults(&out->gen);
    if (file_exists(path)) {
        char perr[256];
        json_value *g = json_parse_file(path, perr, sizeof perr);
        if (!g) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s", perr);
        ctx_t c = {.name = path, .err = err, .err_len = err_len};
        st = parse_generation(&c, g, &out->gen);
        json_free(g);
        if (st != CTTS_OK) return st;
    }

    snprintf(path, sizeof path, "%s/speech_tokenizer/config.json", dir);
    if (!file_exists(path))
        return ctts_err(err, err_len, CTTS_E_IO, "%s: missing (the speech tokenizer folder)", path);
    char perr[256];
    json_value *k = json_parse_file(path, perr, sizeof perr);
    if (!k) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s", perr);
    ctx_t c = {.name = path, .err = err, .err_len = err_len};
    st = parse_codec(&c, k, &out->codec);
    json_free(k);
    if (st != CTTS_OK) return st;
    if (out->codec.dec.num_quantizers != out->talker.dec.num_code_groups)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: decoder_config.num_quantizers (%d) differs from the talker's "
                        "num_code_groups (%d)", path, out->codec.dec.num_quantizers,
                        out->talker.dec.num_code_groups);
    if (out->codec.dec.codebook_size != out->talker.cp.vocab_size)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: decoder_config.codebook_size (%d) differs from the code predictor's "
                        "vocab_size (%d)", path, out->codec.dec.codebook_size,
                        out->talker.cp.vocab_size);
    return CTTS_OK;
}

int q3t_config_detect(const char *dir) {
    if (!dir) return 0;
    char path[Q3T_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!file_exists(path)) return 0;
    char perr[64];
    json_value *v = json_parse_file(path, perr, sizeof perr);
    int yes = v && json_get(v, "tts_model_type") != NULL;
    json_free(v);
    return yes;
}

const q3t_speaker *q3t_config_speaker(const q3t_config *c, const char *name) {
    if (!c || !name) return NULL;
    for (int i = 0; i < c->talker.n_speakers; i++)
        if (strcasecmp(c->talker.speakers[i].name, name) == 0) return &c->talker.speakers[i];
    return NULL;
}

int q3t_config_language_id(const q3t_config *c, const char *name) {
    if (!c || !name || strcasecmp(name, "auto") == 0 || !*name) return -1;
    /* The official supported-language list leaves the dialects out: they are
     * reached only through a dialect speaker (NOTES §1, §3). */
    if (strcasestr(name, "dialect")) return -2;
    for (int i = 0; i < c->talker.n_languages; i++)
        if (strcasecmp(c->talker.languages[i].name, name) == 0) return c->talker.languages[i].id;
    return -2;
}
