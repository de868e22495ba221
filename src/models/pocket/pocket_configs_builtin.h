/* The official Pocket TTS configs, embedded (see scripts/gen_builtin_configs.py). */
#ifndef CTTS_POCKET_CONFIGS_BUILTIN_H
#define CTTS_POCKET_CONFIGS_BUILTIN_H

typedef struct {
    const char *name; /* "english", "english_2026-04", ... */
    const char *yaml;
} pocket_builtin_config;

/* Terminated by {NULL, NULL}. */
extern const pocket_builtin_config pocket_builtin_configs[];

#endif
