/*
 * Pocket TTS on the hub: the official voice catalog and config fetching.
 *
 * Catalog (pocket_tts/utils/utils.py): every predefined voice is a voice
 * state at languages/<language>/embeddings/<name>.safetensors in
 * kyutai/pocket-tts-without-voice-cloning at a pinned revision, <language>
 * being the built-in config name. Default voices per language follow
 * pocket_tts/default_parameters.py (substring match, "alba" otherwise).
 *
 * Fallback (TTSModel._from_pydantic_config): when weights_path cannot be
 * fetched for any reason (gated repo refused, missing, offline and not
 * cached), weights_path_without_voice_cloning is used instead.
 * Nothing here loads weights; it only turns hf:// paths into local files.
 */
#include "models/pocket/pocket_hub.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "io/hf.h"

#define CATALOG_REPO "hf://kyutai/pocket-tts-without-voice-cloning"
#define CATALOG_REVISION "e041936c75475d350b405bc870bcf7c22da4e9e6"

/* _ORIGINS_OF_PREDEFINED_VOICES keys, in the official order. */
static const char *const CATALOG[] = {
    "cosette", "marius",  "javert",  "alba",    "jean",           "anna",
    "vera",    "fantine", "charles", "paul",    "eponine",        "azelma",
    "george",  "mary",    "jane",    "michael", "eve",            "bill_boerst",
    "peter_yearsley", "stuart_bell", "caro_davy", "giovanni", "lola", "juergen",
    "rafael",  "estelle", NULL,
};

const char *pocket_catalog_voice(int i) {
    if (i < 0 || i >= (int)(sizeof CATALOG / sizeof CATALOG[0]) - 1) return NULL;
    return CATALOG[i];
}

int pocket_is_catalog_voice(const char *name) {
    for (int i = 0; name && CATALOG[i]; i++)
        if (strcmp(CATALOG[i], name) == 0) return 1;
    return 0;
}

ctts_status pocket_catalog_uri(const char *language, const char *name, char *uri, size_t len,
                               char *err, size_t err_len) {
    if (!pocket_is_catalog_voice(name))
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "unknown catalog voice '%s' (alba, marius, javert, jean, fantine, "
                        "cosette, eponine, azelma, ...)", name ? name : "(null)");
    if (!language || !pocket_config_builtin(language))
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "catalog voice '%s' needs a model loaded from a built-in config "
                        "(english, french_24l, ...), not '%s'", name,
                        language && *language ? language : "a local config");
    int n = snprintf(uri, len, "%s/languages/%s/embeddings/%s.safetensors@%s", CATALOG_REPO,
                     language, name, CATALOG_REVISION);
    if (n < 0 || (size_t)n >= len)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "uri buffer too small");
    return CTTS_OK;
}

const char *pocket_default_voice(const char *language) {
    static const char *const map[][2] = {
        {"italian", "giovanni"}, {"spanish", "lola"},    {"german", "juergen"},
        {"portuguese", "rafael"}, {"french", "estelle"},
    };
    for (size_t i = 0; language && i < sizeof map / sizeof map[0]; i++)
        if (strstr(language, map[i][0])) return map[i][1];
    return "alba";
}

/* Fetches one path in place ("" and local paths are left alone). */
static ctts_status fetch_path(char *path, const ctts_hub_params *hub, char *err,
                              size_t err_len) {
    if (!hf_is_uri(path)) return CTTS_OK;
    char local[POCKET_PATH_MAX];
    ctts_status st = hf_fetch(hub, path, local, sizeof local, err, err_len);
    if (st == CTTS_OK) memcpy(path, local, strlen(local) + 1);
    return st;
}

ctts_status pocket_config_fetch(pocket_config *cfg, const ctts_hub_params *hub, char *err,
                                size_t err_len) {
    ctts_hub_params none = hf_default_params();
    if (!hub) hub = &none;
    cfg->weights_without_voice_cloning = 0;
    ctts_status st = CTTS_OK;
    if (hf_is_uri(cfg->weights_path)) {
        char first[512] = "";
        st = fetch_path(cfg->weights_path, hub, first, sizeof first);
        if (st != CTTS_OK && st != CTTS_E_CANCELLED && st != CTTS_E_INVALID_ARG &&
            cfg->weights_path_without_voice_cloning[0]) {
            char second[512] = "";
            ctts_status st2 = fetch_path(cfg->weights_path_without_voice_cloning, hub, second,
                                         sizeof second);
            if (st2 == CTTS_OK) {
                memcpy(cfg->weights_path, cfg->weights_path_without_voice_cloning,
                       sizeof cfg->weights_path);
                cfg->weights_without_voice_cloning = 1;
                st = CTTS_OK;
            } else if (st2 == st) { /* one cause (offline, unreachable): say it once */
                st = ctts_err(err, err_len, st2, "%s (the voice-cloning weights %s failed too)",
                              second, cfg->weights_path);
            } else {
                st = ctts_err(err, err_len, st2, "%s (and the weights with voice cloning: %s)",
                              second, first);
            }
        } else if (st != CTTS_OK) {
            ctts_err(err, err_len, st, "%s", first);
        }
    }
    if (st == CTTS_OK) st = fetch_path(cfg->flow_lm_weights_path, hub, err, err_len);
    if (st == CTTS_OK) st = fetch_path(cfg->mimi_weights_path, hub, err, err_len);
    if (st == CTTS_OK) st = fetch_path(cfg->tokenizer_path, hub, err, err_len);
    return st;
}
