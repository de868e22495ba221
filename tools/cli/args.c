/* Option parsing and shared helpers of the ctts command-line tool. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_MODEL = 1000, OPT_TEXT, OPT_TEXT_FILE, OPT_VOICE, OPT_OUTPUT, OPT_TEMP, OPT_LSD,
    OPT_CLAMP, OPT_EOS, OPT_FAE, OPT_MAX_FRAMES, OPT_SEED, OPT_THREADS, OPT_WAV_FORMAT,
    OPT_PREPARED, OPT_CONFIG, OPT_OUT, OPT_TOKENIZER, OPT_ISA, OPT_VERBOSE, OPT_QUIET,
    OPT_MAX_TOKENS, OPT_HELP, OPT_WEIGHTS,
    OPT_OFFLINE,
    OPT_AUDIO, OPT_NO_VOICE_CACHE,
    OPT_SPEAKER, OPT_LANGUAGE, OPT_TOP_K, OPT_TOP_P, OPT_REP_PENALTY, OPT_MAX_NEW_TOKENS,
    OPT_TEXT_MODE,
    OPT_FORMAT, OPT_MEASURE_FIRST, OPT_PIPELINE,
    OPT_JSON, OPT_RUNS, OPT_PROFILE, OPT_TYPE, OPT_MB,
    OPT_HOST, OPT_PORT, OPT_MAX_SESSIONS, OPT_MAX_TEXT, OPT_CORS, OPT_TIMEOUT,
};

static const struct option long_opts[] = {
    {"model", required_argument, 0, OPT_MODEL},
    {"text", required_argument, 0, OPT_TEXT},
    {"text-file", required_argument, 0, OPT_TEXT_FILE},
    {"voice", required_argument, 0, OPT_VOICE},
    {"output", required_argument, 0, OPT_OUTPUT},
    {"temperature", required_argument, 0, OPT_TEMP},
    {"lsd-steps", required_argument, 0, OPT_LSD},
    {"noise-clamp", required_argument, 0, OPT_CLAMP},
    {"eos-threshold", required_argument, 0, OPT_EOS},
    {"frames-after-eos", required_argument, 0, OPT_FAE},
    {"max-frames", required_argument, 0, OPT_MAX_FRAMES},
    {"max-tokens", required_argument, 0, OPT_MAX_TOKENS},
    {"seed", required_argument, 0, OPT_SEED},
    {"threads", required_argument, 0, OPT_THREADS},
    {"isa", required_argument, 0, OPT_ISA},
    {"weights", required_argument, 0, OPT_WEIGHTS},
    {"wav-format", required_argument, 0, OPT_WAV_FORMAT},
    {"prepared", no_argument, 0, OPT_PREPARED},
    {"config", required_argument, 0, OPT_CONFIG},
    {"out", required_argument, 0, OPT_OUT},
    {"tokenizer", required_argument, 0, OPT_TOKENIZER},
    {"verbose", no_argument, 0, OPT_VERBOSE},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"help", no_argument, 0, OPT_HELP},
    {"offline", no_argument, 0, OPT_OFFLINE},
    {"audio", required_argument, 0, OPT_AUDIO},
    {"no-voice-cache", no_argument, 0, OPT_NO_VOICE_CACHE},
    {"speaker", required_argument, 0, OPT_SPEAKER},
    {"language", required_argument, 0, OPT_LANGUAGE},
    {"top-k", required_argument, 0, OPT_TOP_K},
    {"top-p", required_argument, 0, OPT_TOP_P},
    {"repetition-penalty", required_argument, 0, OPT_REP_PENALTY},
    {"max-new-tokens", required_argument, 0, OPT_MAX_NEW_TOKENS},
    {"text-mode", required_argument, 0, OPT_TEXT_MODE},
    {"format", required_argument, 0, OPT_FORMAT},
    {"measure-first-chunk", no_argument, 0, OPT_MEASURE_FIRST},
    {"pipeline", required_argument, 0, OPT_PIPELINE},
    {"json", no_argument, 0, OPT_JSON},
    {"runs", required_argument, 0, OPT_RUNS},
    {"mb", required_argument, 0, OPT_MB},
    {"profile", no_argument, 0, OPT_PROFILE},
    {"type", required_argument, 0, OPT_TYPE},
    {"host", required_argument, 0, OPT_HOST},
    {"port", required_argument, 0, OPT_PORT},
    {"max-sessions", required_argument, 0, OPT_MAX_SESSIONS},
    {"max-text", required_argument, 0, OPT_MAX_TEXT},
    {"cors", required_argument, 0, OPT_CORS},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {0, 0, 0, 0},
};

int cli_fail(const char *fmt, const char *a) {
    cli_progress_end();
    fprintf(stderr, "ctts: error: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 1;
}

int cli_usage_error(const char *msg, const char *a) {
    fprintf(stderr, "ctts: error: ");
    fprintf(stderr, msg, a);
    fprintf(stderr, " (see 'ctts --help')\n");
    return 2;
}

void cli_usage(FILE *f) {
    fprintf(f,
            "usage: ctts COMMAND [options]\n"
            "commands:\n"
            "  generate   synthesize text to a WAV file\n"
            "  tokenize   print the token ids of a text\n"
            "  info       print a model's config, parameter count and tensors\n"
            "  dev make-random-model   write a random-weight model in the official layout\n"
            "  dev membw [--mb N] [--threads N]   the host's memory read bandwidth (GB/s)\n"
            "  pull MODEL [--voice V|all|none]   download a model (and voices) into the hub cache\n"
            "  models     list the hub cache (repos, revisions, sizes) and the built-in models\n"
            "  export-voice  clone a voice from --audio FILE into --output voice.safetensors\n"
            "  stream     speak text as it is generated: raw PCM to stdout (pipe into aplay\n"
            "             -f S16_LE -r 24000 -c 1) or --output F.wav written progressively;\n"
            "             --text-file - reads stdin as it arrives (Qwen3-TTS speaks before\n"
            "             it ends with --text-mode streaming); --format s16|f32 (s16);\n"
            "             --measure-first-chunk prints first_chunk_ms on stderr (after\n"
            "             a one-frame warm-up that pages the weights in);\n"
            "             --pipeline on|off|auto: audio decoded beside the next frames\n"
            "             (auto: Pocket keeps the faster mode, Qwen3-TTS starts once ahead\n"
            "             of real time; on: the most throughput)\n"
            "  quantize IN OUT_DIR --type q8_0|q4_0|bf16|f32   convert a model's weights and\n"
            "             write OUT_DIR/model.gguf + config.yaml (loads without copies)\n"
            "  serve      HTTP speech server: POST /v1/audio/speech {\"input\": text, ...} ->\n"
            "             WAV or PCM, whole or streamed (docs/SERVER.md); --host H (127.0.0.1)\n"
            "             --port N (8080; 0 = any) --max-sessions N (4, interleaved frame by\n"
            "             frame) --max-text BYTES (20000) --cors ORIGIN (browser clients)\n"
            "             --timeout S (30: stalled connections, slow request heads);\n"
            "             --voice and generation options set the request defaults; an access\n"
            "             log on stderr unless --quiet\n"
            "  bench      speed: short / medium / long text at --max-frames N (40) frames per\n"
            "             chunk, EOS off; --runs N (3) --json --profile (per-stage GFLOP/s)\n"
            "common options:\n"
            "  --model M            YAML config, directory with config.yaml, or built-in name\n"
            "  --text T | --text-file F|-   input text\n"
            "  --voice V            voice state .safetensors, an audio file to clone\n"
            "                       (wav/flac/ogg/mp3...), or 'none' (default none)\n"
            "  --audio F            (export-voice) audio file to clone; the first 30 s are used\n"
            "  --no-voice-cache     do not read or write cloned voices in\n"
            "                       $XDG_CACHE_HOME/ctts/voices (default ~/.cache/ctts/voices)\n"
            "  --output F.wav       output file\n"
            "  --wav-format s16|f32 (default s16)\n"
            "  --temperature F (0.7)  --lsd-steps N (1)  --noise-clamp F (none)\n"
            "  --eos-threshold F (-4.0)  --frames-after-eos N (auto)  --max-frames N (auto)\n"
            "  --max-tokens N (50, tokens per text chunk)  --seed N (0)\n"
            "  --threads N (all CPUs)  --isa auto|scalar|avx2|avx512|neon\n"
            "  --weights f32|bf16|q8_0|q4_0   convert linear weights at load (default: as stored)\n"
            "Qwen3-TTS models (a Hugging Face folder with config.json):\n"
            "  --speaker NAME (required for CustomVoice: ryan, vivian, ...)\n"
            "  --language auto|english|chinese|... (auto)\n"
            "  --temperature F (0.9; 0 = greedy)  --top-k N (50)  --top-p F (1.0)\n"
            "  --repetition-penalty F (1.05)  --max-new-tokens N (8192)  --seed N (0)\n"
            "  --text-mode auto|streaming|non-streaming (auto: the model's default)\n"
            "  --prepared           (tokenize) apply the official text preparation first\n"
            "  --verbose / --quiet\n"
            "  --offline            never use the network (also HF_HUB_OFFLINE=1)\n"
            "Hugging Face hub (hf:// paths, built-in models, catalog voices like 'alba'):\n"
            "  cache HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (shared\n"
            "  with Python); HF_ENDPOINT, HF_TOKEN (or HF_HOME/token) for gated repos.\n"
            "  generate without --model uses 'english' and its default voice 'alba'.\n");
}

static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || v != v) return -1;
    *out = v;
    return 0;
}

int cli_parse_args(int argc, char **argv, cli_args *a) {
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: a->model = optarg; break;
        case OPT_TEXT: a->text = optarg; break;
        case OPT_TEXT_FILE: a->text_file = optarg; break;
        case OPT_VOICE: a->voice = optarg; break;
        case OPT_OUTPUT: a->output = optarg; break;
        case OPT_CONFIG: a->config = optarg; break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_TOKENIZER: a->tokenizer = optarg; break;
        case OPT_PREPARED: a->prepared = 1; break;
        case OPT_VERBOSE: a->verbose = 1; break;
        case OPT_QUIET: a->quiet = 1; break;
        case OPT_OFFLINE: a->mp.hub.offline = 1; break;
        case OPT_AUDIO: a->audio = optarg; break;
        case OPT_NO_VOICE_CACHE: a->no_voice_cache = 1; break;
        case OPT_SPEAKER: a->speaker = optarg; break;
        case OPT_LANGUAGE: a->language = optarg; break;
        case OPT_TOP_K:
            if (parse_int(optarg, 0, 1000000, &a->top_k))
                return cli_usage_error("--top-k needs an integer >= 0 (0 = off), got '%s'", optarg);
            a->gp_set_top_k = 1;
            break;
        case OPT_TOP_P:
            if (parse_float(optarg, &a->top_p) || !(a->top_p > 0 && a->top_p <= 1))
                return cli_usage_error("--top-p needs a number in (0, 1], got '%s'", optarg);
            a->gp_set_top_p = 1;
            break;
        case OPT_REP_PENALTY:
            if (parse_float(optarg, &a->rep_penalty) || !(a->rep_penalty > 0))
                return cli_usage_error("--repetition-penalty needs a number > 0, got '%s'", optarg);
            a->gp_set_rep = 1;
            break;
        case OPT_MAX_NEW_TOKENS:
            if (parse_int(optarg, 1, 10000000, &a->max_new_tokens))
                return cli_usage_error("--max-new-tokens needs an integer >= 1, got '%s'", optarg);
            a->gp_set_max_new = 1;
            break;
        case OPT_TEXT_MODE:
            if (!strcmp(optarg, "auto")) a->text_mode = CTTS_TEXT_MODE_AUTO;
            else if (!strcmp(optarg, "streaming")) a->text_mode = CTTS_TEXT_MODE_STREAMING;
            else if (!strcmp(optarg, "non-streaming")) a->text_mode = CTTS_TEXT_MODE_NON_STREAMING;
            else return cli_usage_error("--text-mode must be auto, streaming or non-streaming, got '%s'", optarg);
            a->gp_set_text_mode = 1;
            break;
        case OPT_HELP: cli_usage(stdout); exit(0);
        case OPT_TEMP:
            if (parse_float(optarg, &a->temp) || a->temp < 0)
                return cli_usage_error("--temperature needs a number >= 0, got '%s'", optarg);
            a->gp_set_temp = 1;
            break;
        case OPT_CLAMP:
            if (parse_float(optarg, &a->clamp) || a->clamp < 0)
                return cli_usage_error("--noise-clamp needs a number >= 0, got '%s'", optarg);
            a->gp_set_clamp = 1;
            break;
        case OPT_EOS:
            if (parse_float(optarg, &a->eos))
                return cli_usage_error("--eos-threshold needs a number, got '%s'", optarg);
            a->gp_set_eos = 1;
            break;
        case OPT_LSD:
            if (parse_int(optarg, 1, 1000, &a->lsd))
                return cli_usage_error("--lsd-steps needs an integer in [1, 1000], got '%s'", optarg);
            a->gp_set_lsd = 1;
            break;
        case OPT_FAE:
            if (parse_int(optarg, 0, 100000, &a->fae))
                return cli_usage_error("--frames-after-eos needs an integer >= 0, got '%s'", optarg);
            a->gp_set_fae = 1;
            break;
        case OPT_MAX_FRAMES:
            if (parse_int(optarg, 1, 10000000, &a->max_frames))
                return cli_usage_error("--max-frames needs an integer >= 1, got '%s'", optarg);
            a->gp_set_max = 1;
            break;
        case OPT_MAX_TOKENS:
            if (parse_int(optarg, 1, 100000, &a->max_tokens))
                return cli_usage_error("--max-tokens needs an integer >= 1, got '%s'", optarg);
            a->gp_set_max_tokens = 1;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            a->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return cli_usage_error("--seed needs a non-negative integer, got '%s'", optarg);
            a->gp_set_seed = 1;
            break;
        }
        case OPT_THREADS:
            if (parse_int(optarg, 0, 1024, &a->mp.n_threads))
                return cli_usage_error("--threads needs an integer in [0, 1024], got '%s'", optarg);
            break;
        case OPT_ISA:
            if (!strcmp(optarg, "auto")) a->mp.cpu_isa = CTTS_ISA_AUTO;
            else if (!strcmp(optarg, "scalar")) a->mp.cpu_isa = CTTS_ISA_SCALAR;
            else if (!strcmp(optarg, "avx2")) a->mp.cpu_isa = CTTS_ISA_AVX2;
            else if (!strcmp(optarg, "avx512")) a->mp.cpu_isa = CTTS_ISA_AVX512;
            else if (!strcmp(optarg, "neon")) a->mp.cpu_isa = CTTS_ISA_NEON;
            else return cli_usage_error("--isa must be auto, scalar, avx2, avx512 or neon, got '%s'", optarg);
            break;
        case OPT_WEIGHTS:
            if (!strcmp(optarg, "f32")) a->mp.weight_type = CTTS_WEIGHTS_F32;
            else if (!strcmp(optarg, "bf16")) a->mp.weight_type = CTTS_WEIGHTS_BF16;
            else if (!strcmp(optarg, "q8_0")) a->mp.weight_type = CTTS_WEIGHTS_Q8_0;
            else if (!strcmp(optarg, "q4_0")) a->mp.weight_type = CTTS_WEIGHTS_Q4_0;
            else return cli_usage_error("--weights must be f32, bf16, q8_0 or q4_0, got '%s'", optarg);
            break;
        case OPT_WAV_FORMAT:
            if (!strcmp(optarg, "s16")) a->wav_f32 = 0;
            else if (!strcmp(optarg, "f32")) a->wav_f32 = 1;
            else return cli_usage_error("--wav-format must be s16 or f32, got '%s'", optarg);
            break;
        case OPT_FORMAT:
            if (!strcmp(optarg, "s16")) a->wav_f32 = 0;
            else if (!strcmp(optarg, "f32")) a->wav_f32 = 1;
            else return cli_usage_error("--format must be s16 or f32, got '%s'", optarg);
            break;
        case OPT_MEASURE_FIRST: a->measure_first = 1; break;
        case OPT_JSON: a->json = 1; break;
        case OPT_PROFILE: a->profile = 1; break;
        case OPT_RUNS:
            if (parse_int(optarg, 1, 1000, &a->runs))
                return cli_usage_error("--runs needs an integer in [1, 1000], got '%s'", optarg);
            break;
        case OPT_TYPE: a->qtype = optarg; break;
        case OPT_MB:
            if (parse_int(optarg, 1, 4096, &a->membw_mb))
                return cli_usage_error("--mb needs an integer in [1, 4096], got '%s'", optarg);
            break;
        case OPT_HOST: a->host = optarg; break;
        case OPT_CORS: a->cors = optarg; break;
        case OPT_TIMEOUT:
            if (parse_int(optarg, 1, 3600, &a->timeout_s))
                return cli_usage_error("--timeout needs seconds in [1, 3600], got '%s'", optarg);
            break;
        case OPT_PORT:
            if (parse_int(optarg, 0, 65535, &a->port))
                return cli_usage_error("--port needs an integer in [0, 65535] (0 = any free port), got '%s'", optarg);
            a->port_set = 1;
            break;
        case OPT_MAX_SESSIONS:
            if (parse_int(optarg, 1, 256, &a->max_sessions))
                return cli_usage_error("--max-sessions needs an integer in [1, 256], got '%s'", optarg);
            break;
        case OPT_MAX_TEXT:
            if (parse_int(optarg, 1, 1000000, &a->max_text))
                return cli_usage_error("--max-text needs an integer in [1, 1000000] (bytes), got '%s'", optarg);
            break;
        case OPT_PIPELINE:
            if (!strcmp(optarg, "on")) a->pipeline = 1;
            else if (!strcmp(optarg, "off")) a->pipeline = 0;
            else if (!strcmp(optarg, "auto")) a->pipeline = -1;
            else return cli_usage_error("--pipeline must be on, off or auto, got '%s'", optarg);
            a->gp_set_pipeline = 1;
            break;
        case ':': return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("unexpected argument '%s'", argv[optind]);
    return 0;
}

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer. */
static char *read_text_file(const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = cap > (256u << 20) ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (f != stdin) fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

void cli_apply_gen_args(const cli_args *a, ctts_gen_params *gp) {
    if (a->gp_set_temp) gp->temperature = a->temp;
    if (a->gp_set_lsd) gp->lsd_steps = a->lsd;
    if (a->gp_set_clamp) gp->noise_clamp = a->clamp;
    if (a->gp_set_eos) gp->eos_threshold = a->eos;
    if (a->gp_set_fae) gp->frames_after_eos = a->fae;
    if (a->gp_set_max) gp->max_frames = a->max_frames;
    if (a->gp_set_seed) gp->seed = a->seed;
    if (a->gp_set_max_tokens) gp->max_tokens_per_chunk = a->max_tokens;
    if (a->speaker) gp->speaker = a->speaker;
    if (a->language) gp->language = a->language;
    if (a->gp_set_top_k) gp->top_k = a->top_k;
    if (a->gp_set_top_p) gp->top_p = a->top_p;
    if (a->gp_set_rep) gp->repetition_penalty = a->rep_penalty;
    if (a->gp_set_max_new) gp->max_new_tokens = a->max_new_tokens;
    if (a->gp_set_text_mode) gp->text_mode = (ctts_text_mode)a->text_mode;
    if (a->gp_set_pipeline) gp->pipeline = a->pipeline;
}

int cli_load_model(const cli_args *a, ctts_model **m) {
    char err[1024];
    if (!a->model) return cli_usage_error("%s needs --model", "this command");
    if (ctts_model_load(a->model, &a->mp, m, err, sizeof err) != CTTS_OK) return cli_fail("%s", err);
    return 0;
}

/* The text from --text or --text-file; *owned is set when it must be freed. */
int cli_get_text(const cli_args *a, const char **text, char **owned) {
    *owned = NULL;
    if (a->text && a->text_file) return cli_usage_error("%s", "give --text or --text-file, not both");
    if (a->text) {
        *text = a->text;
        return 0;
    }
    if (!a->text_file) return cli_usage_error("%s", "no text: give --text or --text-file");
    *owned = read_text_file(a->text_file);
    if (!*owned) return cli_fail("cannot read text file '%s'", a->text_file);
    *text = *owned;
    return 0;
}

