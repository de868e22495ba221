/*
 * Core glue for the Hugging Face hub (core/hub.c): voice names and hf://
 * addresses turned into local files for ctts_voice_load. Internal.
 */
#ifndef CTTS_CORE_HUB_H
#define CTTS_CORE_HUB_H

#include <stddef.h>

#include "ctts.h"

/* hf:// addresses are fetched; catalog voice names (when no such file exists)
 * become their official file for `language` (a built-in config name, "" for
 * a local config: an error); anything else is copied unchanged. */
ctts_status core_voice_resolve(const ctts_hub_params *hub, const char *language,
                               const char *name_or_path, char *path, size_t path_len, char *err,
                               size_t err_len);

#endif
