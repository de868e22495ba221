/*
 * Static list of the model families behind models/arch.h and the detection
 * that picks one for a path. Pocket is not listed: core/tts.c handles it
 * directly for now, for every path no family here claims.
 */
#include <stddef.h>

#include "models/arch.h"

extern const ctts_family q3t_family;

static const ctts_family *const families[] = {
    &q3t_family,
};

const ctts_family *ctts_family_detect(const char *path) {
    if (!path) return NULL;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (families[i]->detect(path)) return families[i];
    return NULL;
}
