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
    char hub_cache[1024], hub_token[1024]; /* storage behind mp.hub (cmd_hf.c) */
    const char *audio; /* export-voice --audio */
    int no_voice_cache; /* --no-voice-cache */
    /* Qwen3-TTS options (--speaker --language --top-k --top-p --repetition-penalty
     * --max-new-tokens --text-mode) */
    const char *speaker, *language;
    int top_k, max_new_tokens, text_mode;
    float top_p, rep_penalty;
    int gp_set_top_k, gp_set_top_p, gp_set_rep, gp_set_max_new, gp_set_text_mode;
    /* stream: --measure-first-chunk, --pipeline on|off|auto */
    int measure_first, pipeline, gp_set_pipeline;
    /* bench: --json --runs N --profile; quantize: --type q8_0|q4_0 */
    int json, runs, profile;
    const char *qtype;
    int membw_mb; /* dev membw --mb N */
    /* serve: --host --port --max-sessions --max-text --cors --timeout */
    const char *host, *cors;
    int port, port_set, max_sessions, max_text, timeout_s;
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
/* ctts dev membw: prints "<X> GB/s read (...)" (cmd_membw.c). */
int cmd_membw(cli_args *a);
/* That number measured by a child process (this binary's dev membw), so its
 * buffer stays out of the caller's RSS; -1 when it cannot be had. */
double cli_host_read_gbs(int threads);
/* Fills a->mp.hub from HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME / HOME,
 * HF_ENDPOINT, HF_TOKEN or the token file, HF_HUB_OFFLINE; a progress bar on
 * a terminal (cmd_hf.c). */
void cli_hub_setup(cli_args *a);
/* Ends a progress bar line left open by a failed download (before an error). */
void cli_progress_end(void);
int cmd_pull(int argc, char **argv, cli_args *a);
int cmd_models(cli_args *a);
int cmd_export_voice(cli_args *a);
int cmd_stream(cli_args *a);
/* ctts serve: the HTTP speech server (tools/server/server.c, docs/SERVER.md). */
int cmd_serve(cli_args *a);
/* ctts bench: speed over short / medium / long texts at a fixed frame count (cmd_bench.c). */
int cmd_bench(cli_args *a);
/* ctts quantize IN OUT --type T: IN loaded with weights T, written as a GGUF model dir (cmd_quantize.c). */
int cmd_quantize(int argc, char **argv, cli_args *a);
/* Loads --voice (state file, audio file or "none") with the voice cache
 * ($XDG_CACHE_HOME/ctts/voices unless --no-voice-cache); max_seconds as in
 * ctts_voice_params. 0 or an exit code (message printed). */
int cli_load_voice(const cli_args *a, ctts_model *m, const char *voice, float max_seconds,
                   ctts_voice **v);

#endif
