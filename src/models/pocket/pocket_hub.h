/*
 * Pocket TTS files on the Hugging Face hub: the official voice catalog
 * (names, per-language addresses, default voice per language) and the
 * fetching of a config's hf:// paths with the official fallback from the
 * voice-cloning weights to the weights without voice cloning.
 */
#ifndef CTTS_POCKET_HUB_H
#define CTTS_POCKET_HUB_H

#include <stddef.h>

#include "ctts.h"
#include "models/pocket/pocket_config.h"

/* Catalog voice names, NULL past the end. */
const char *pocket_catalog_voice(int i);
/* 1 when name is a catalog voice. */
int pocket_is_catalog_voice(const char *name);
/* hf://kyutai/pocket-tts-without-voice-cloning/languages/<language>/embeddings/<name>.safetensors@<rev> */
ctts_status pocket_catalog_uri(const char *language, const char *name, char *uri, size_t len,
                               char *err, size_t err_len);
/* The official default voice of a language (config name), "alba" unless listed. */
const char *pocket_default_voice(const char *language);

/* Replaces every hf:// path of cfg by its file in the hub cache (fetching
 * it). weights_path falls back to weights_path_without_voice_cloning when it
 * cannot be had; cfg->weights_without_voice_cloning records that. */
ctts_status pocket_config_fetch(pocket_config *cfg, const ctts_hub_params *hub, char *err,
                                size_t err_len);

#endif
