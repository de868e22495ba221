/*
 * Shared pieces of the ctts command-line tool: the option set (one table for
 * every command, so "--opt VALUE" / "--opt=VALUE" parse alike everywhere),
 * the parsed arguments and small helpers for errors and model loading.
 * Each command lives in its own cmd_*.c file.
 */
#ifndef CTTS_CLI_H
#define CTTS_CLI_H

#include "ctts.h"

typedef struct {
    const char *model, *text, *text_file, *voice, *output, *config, *out, *tokenizer;
    int prepared, verbose, quiet, wav_f32;
    ctts_model_params mp;
    ctts_gen_params gp;
    int gp_set_temp, gp_set_lsd, gp_set_clamp, gp_set_eos, gp_set_fae, gp_set_max, gp_set_seed,
        gp_set_max_tokens;
    float temp, clamp, eos;
    int lsd, fae, max_frames, max_tokens;
    unsigned long long seed;
} cli_args;


/* Prints "ctts: error: <fmt % a>" and returns 1. */
#include <stdio.h>

/* Prints the command summary. */
void cli_usage(FILE *f);
int cli_fail(const char *fmt, const char *a);
/* Prints a usage error and returns 2. */
int cli_usage_error(const char *fmt, const char *a);
/* Parses argv[1..] (argv[0] is the command name) into a; 0 or an exit code. */
int cli_parse_args(int argc, char **argv, cli_args *a);
/* Copies the generation options that were given into gp. */
void cli_apply_gen_args(const cli_args *a, ctts_gen_params *gp);
/* Loads --model; 0 or an exit code (message printed). */
int cli_load_model(const cli_args *a, ctts_model **m);
/* The text from --text or --text-file; *owned is set when it must be freed. */
int cli_get_text(const cli_args *a, const char **text, char **owned);

int cmd_generate(cli_args *a);
int cmd_tokenize(cli_args *a);
int cmd_info(cli_args *a);
int cmd_dev(int argc, char **argv, cli_args *a);

#endif
