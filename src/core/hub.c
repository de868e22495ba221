/*
 * Public Hugging Face hub API (include/ctts.h): fetching hf:// files, listing
 * the hub cache, pulling everything a model needs, the official voice
 * catalog. Thin wrappers over io/hf.c and models/pocket/pocket_hub.c; the
 * caller passes every setting (no environment variable is read here).
 */
#include "core/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/hf.h"
#include "models/pocket/pocket_config.h"
#include "models/pocket/pocket_hub.h"

ctts_hub_params ctts_hub_default_params(void) { return hf_default_params(); }

ctts_status ctts_hub_fetch(const ctts_hub_params *hub, const char *uri, char *path,
                           size_t path_len, char *err, size_t err_len) {
    if (!uri || !path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "uri and path required");
    return hf_fetch(hub, uri, path, path_len, err, err_len);
}

ctts_status ctts_hub_list(const char *cache_dir, ctts_hub_entry_fn fn, void *user, char *err,
                          size_t err_len) {
    return hf_list(cache_dir, fn, user, err, err_len);
}

const char *ctts_voice_catalog_name(int i) { return pocket_catalog_voice(i); }

ctts_status ctts_voice_catalog_uri(const char *language, const char *name, char *uri,
                                   size_t uri_len, char *err, size_t err_len) {
    if (!uri) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "uri buffer required");
    return pocket_catalog_uri(language, name, uri, uri_len, err, err_len);
}

const char *ctts_model_builtin_name(int i) {
    const char *const *names = pocket_config_builtin_names();
    for (int k = 0; names[k]; k++)
        if (k == i) return names[k];
    return NULL;
}

const char *ctts_model_default_voice(const ctts_model *m) {
    const ctts_model_info *info = ctts_model_get_info(m);
    if (!info || !info->language || !*info->language) return NULL;
    return pocket_default_voice(info->language);
}

ctts_status core_voice_resolve(const ctts_hub_params *hub, const char *language,
                               const char *name_or_path, char *path, size_t path_len, char *err,
                               size_t err_len) {
    struct stat sb;
    if (pocket_is_catalog_voice(name_or_path) && stat(name_or_path, &sb) != 0) {
        char uri[512];
        ctts_status st = pocket_catalog_uri(language, name_or_path, uri, sizeof uri, err,
                                            err_len);
        if (st != CTTS_OK) return st;
        return hf_fetch(hub, uri, path, path_len, err, err_len);
    }
    return hf_fetch(hub, name_or_path, path, path_len, err, err_len);
}

ctts_status ctts_model_pull(const char *path, const ctts_model_params *params, const char *voice,
                            int *voice_cloning, char *err, size_t err_len) {
    if (voice_cloning) *voice_cloning = 0;
    if (!path || !*path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model given");
    ctts_model_params p = params ? *params : ctts_model_default_params();
    pocket_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_config_load(path, cfg, err, err_len);
    if (st == CTTS_OK) st = pocket_config_fetch(cfg, &p.hub, err, err_len);
    /* Local files named by a config must exist too. */
    const char *files[] = {cfg->weights_path, cfg->flow_lm_weights_path, cfg->mimi_weights_path,
                           cfg->tokenizer_path};
    struct stat sb;
    for (size_t i = 0; st == CTTS_OK && i < sizeof files / sizeof files[0]; i++)
        if (files[i][0] && stat(files[i], &sb) != 0)
            st = ctts_err(err, err_len, CTTS_E_IO, "%s: no such file (named by %s)", files[i],
                          path);
    if (st == CTTS_OK && voice_cloning) *voice_cloning = !cfg->weights_without_voice_cloning;
    const char *language = cfg->config_path[0] ? "" : cfg->name;
    if (st == CTTS_OK && (!voice || strcmp(voice, "none") != 0)) {
        if (!voice && *language) voice = pocket_default_voice(language);
        if (voice) {
            char local[4096];
            st = core_voice_resolve(&p.hub, language, voice, local, sizeof local, err, err_len);
            if (st == CTTS_OK && stat(local, &sb) != 0)
                st = ctts_err(err, err_len, CTTS_E_NOT_FOUND, "unknown voice '%s'", voice);
        }
    }
    free(cfg);
    return st;
}
