/*
 * ctts command-line tool. A client of include/ctts.h only.
 *
 *   ctts generate  --model M --text T --output out.wav [options]
 *   ctts tokenize  --model M --text T [--prepared]
 *   ctts info      --model M
 *   ctts dev make-random-model --config NAME|YAML --seed N --out DIR [--tokenizer FILE]
 *
 * Options follow GNU conventions: "--opt VALUE" and "--opt=VALUE" both work,
 * so texts may start with '-'. Exit status 0 on success; on failure one line
 * "ctts: error: ..." on stderr and status 1 (2 for usage errors).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctts.h"

enum {
    OPT_MODEL = 1000, OPT_TEXT, OPT_TEXT_FILE, OPT_VOICE, OPT_OUTPUT, OPT_TEMP, OPT_LSD,
    OPT_CLAMP, OPT_EOS, OPT_FAE, OPT_MAX_FRAMES, OPT_SEED, OPT_THREADS, OPT_WAV_FORMAT,
    OPT_PREPARED, OPT_CONFIG, OPT_OUT, OPT_TOKENIZER, OPT_ISA, OPT_VERBOSE, OPT_QUIET,
    OPT_MAX_TOKENS, OPT_HELP, OPT_WEIGHTS,
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
    {0, 0, 0, 0},
};

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

static int fail(const char *fmt, const char *a) {
    fprintf(stderr, "ctts: error: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 1;
}

static int usage_error(const char *msg, const char *a) {
    fprintf(stderr, "ctts: error: ");
    fprintf(stderr, msg, a);
    fprintf(stderr, " (see 'ctts --help')\n");
    return 2;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ctts COMMAND [options]\n"
            "commands:\n"
            "  generate   synthesize text to a WAV file\n"
            "  tokenize   print the token ids of a text\n"
            "  info       print a model's config, parameter count and tensors\n"
            "  dev make-random-model   write a random-weight model in the official layout\n"
            "common options:\n"
            "  --model M            YAML config, directory with config.yaml, or built-in name\n"
            "  --text T | --text-file F|-   input text\n"
            "  --voice V            voice state .safetensors, or 'none' (default none)\n"
            "  --output F.wav       output file\n"
            "  --wav-format s16|f32 (default s16)\n"
            "  --temperature F (0.7)  --lsd-steps N (1)  --noise-clamp F (none)\n"
            "  --eos-threshold F (-4.0)  --frames-after-eos N (auto)  --max-frames N (auto)\n"
            "  --max-tokens N (50, tokens per text chunk)  --seed N (0)\n"
            "  --threads N (all CPUs)  --isa auto|scalar|avx2|avx512|neon\n"
            "  --prepared           (tokenize) apply the official text preparation first\n"
            "  --verbose / --quiet\n");
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

static int parse_args(int argc, char **argv, cli_args *a) {
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
        case OPT_HELP: usage(stdout); exit(0);
        case OPT_TEMP:
            if (parse_float(optarg, &a->temp) || a->temp < 0)
                return usage_error("--temperature needs a number >= 0, got '%s'", optarg);
            a->gp_set_temp = 1;
            break;
        case OPT_CLAMP:
            if (parse_float(optarg, &a->clamp) || a->clamp < 0)
                return usage_error("--noise-clamp needs a number >= 0, got '%s'", optarg);
            a->gp_set_clamp = 1;
            break;
        case OPT_EOS:
            if (parse_float(optarg, &a->eos))
                return usage_error("--eos-threshold needs a number, got '%s'", optarg);
            a->gp_set_eos = 1;
            break;
        case OPT_LSD:
            if (parse_int(optarg, 1, 1000, &a->lsd))
                return usage_error("--lsd-steps needs an integer in [1, 1000], got '%s'", optarg);
            a->gp_set_lsd = 1;
            break;
        case OPT_FAE:
            if (parse_int(optarg, 0, 100000, &a->fae))
                return usage_error("--frames-after-eos needs an integer >= 0, got '%s'", optarg);
            a->gp_set_fae = 1;
            break;
        case OPT_MAX_FRAMES:
            if (parse_int(optarg, 1, 10000000, &a->max_frames))
                return usage_error("--max-frames needs an integer >= 1, got '%s'", optarg);
            a->gp_set_max = 1;
            break;
        case OPT_MAX_TOKENS:
            if (parse_int(optarg, 1, 100000, &a->max_tokens))
                return usage_error("--max-tokens needs an integer >= 1, got '%s'", optarg);
            a->gp_set_max_tokens = 1;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            a->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("--seed needs a non-negative integer, got '%s'", optarg);
            a->gp_set_seed = 1;
            break;
        }
        case OPT_THREADS:
            if (parse_int(optarg, 0, 1024, &a->mp.n_threads))
                return usage_error("--threads needs an integer in [0, 1024], got '%s'", optarg);
            break;
        case OPT_ISA:
            if (!strcmp(optarg, "auto")) a->mp.cpu_isa = CTTS_ISA_AUTO;
            else if (!strcmp(optarg, "scalar")) a->mp.cpu_isa = CTTS_ISA_SCALAR;
            else if (!strcmp(optarg, "avx2")) a->mp.cpu_isa = CTTS_ISA_AVX2;
            else if (!strcmp(optarg, "avx512")) a->mp.cpu_isa = CTTS_ISA_AVX512;
            else if (!strcmp(optarg, "neon")) a->mp.cpu_isa = CTTS_ISA_NEON;
            else return usage_error("--isa must be auto, scalar, avx2, avx512 or neon, got '%s'", optarg);
            break;
        case OPT_WEIGHTS:
            if (!strcmp(optarg, "f32")) a->mp.weight_type = CTTS_WEIGHTS_F32;
            else if (!strcmp(optarg, "bf16")) a->mp.weight_type = CTTS_WEIGHTS_BF16;
            else if (!strcmp(optarg, "q8_0")) a->mp.weight_type = CTTS_WEIGHTS_Q8_0;
            else if (!strcmp(optarg, "q4_0")) a->mp.weight_type = CTTS_WEIGHTS_Q4_0;
            else return usage_error("--weights must be f32, bf16, q8_0 or q4_0, got '%s'", optarg);
            break;
        case OPT_WAV_FORMAT:
            if (!strcmp(optarg, "s16")) a->wav_f32 = 0;
            else if (!strcmp(optarg, "f32")) a->wav_f32 = 1;
            else return usage_error("--wav-format must be s16 or f32, got '%s'", optarg);
            break;
        case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
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

static void apply_gen_args(const cli_args *a, ctts_gen_params *gp) {
    if (a->gp_set_temp) gp->temperature = a->temp;
    if (a->gp_set_lsd) gp->lsd_steps = a->lsd;
    if (a->gp_set_clamp) gp->noise_clamp = a->clamp;
    if (a->gp_set_eos) gp->eos_threshold = a->eos;
    if (a->gp_set_fae) gp->frames_after_eos = a->fae;
    if (a->gp_set_max) gp->max_frames = a->max_frames;
    if (a->gp_set_seed) gp->seed = a->seed;
    if (a->gp_set_max_tokens) gp->max_tokens_per_chunk = a->max_tokens;
}

static int load_model(const cli_args *a, ctts_model **m) {
    char err[1024];
    if (!a->model) return usage_error("%s needs --model", "this command");
    if (ctts_model_load(a->model, &a->mp, m, err, sizeof err) != CTTS_OK) return fail("%s", err);
    return 0;
}

/* The text from --text or --text-file; *owned is set when it must be freed. */
static int get_text(const cli_args *a, const char **text, char **owned) {
    *owned = NULL;
    if (a->text && a->text_file) return usage_error("%s", "give --text or --text-file, not both");
    if (a->text) {
        *text = a->text;
        return 0;
    }
    if (!a->text_file) return usage_error("%s", "no text: give --text or --text-file");
    *owned = read_text_file(a->text_file);
    if (!*owned) return fail("cannot read text file '%s'", a->text_file);
    *text = *owned;
    return 0;
}

static int cmd_generate(cli_args *a) {
    if (!a->output) return usage_error("%s", "generate needs --output FILE.wav");
    const char *text;
    char *owned;
    int rc = get_text(a, &text, &owned);
    if (rc) return rc;
    ctts_model *m = NULL;
    ctts_voice *v = NULL;
    ctts_session *s = NULL;
    float *pcm = NULL;
    size_t n = 0;
    char err[1024];
    if ((rc = load_model(a, &m))) goto done;
    if (ctts_voice_load(m, a->voice, &v, err, sizeof err) != CTTS_OK) {
        rc = fail("%s", err);
        goto done;
    }
    if (ctts_session_new(m, &s) != CTTS_OK) {
        rc = fail("%s", "cannot create a session (out of memory?)");
        goto done;
    }
    ctts_gen_params gp = ctts_gen_default_params(m);
    apply_gen_args(a, &gp);
    if (ctts_synthesize(s, text, v, &gp, &pcm, &n) != CTTS_OK) {
        rc = fail("%s", ctts_session_error(s));
        goto done;
    }
    if (ctts_wav_write(a->output, pcm, n, ctts_model_get_info(m)->sample_rate,
                       a->wav_f32 ? CTTS_WAV_F32 : CTTS_WAV_S16, err, sizeof err) != CTTS_OK) {
        rc = fail("%s", err);
        goto done;
    }
    if (a->verbose) {
        const ctts_timings *t = ctts_session_timings(s);
        fprintf(stderr,
                "ctts: %lld frames, %.2f s of audio in %.1f ms (%.2fx real time); load %.1f ms, "
                "prepare %.1f ms, prefill %.1f ms, flowlm %.1f ms, mimi %.1f ms, first audio "
                "%.1f ms\n",
                (long long)t->frames, t->samples / (double)ctts_model_get_info(m)->sample_rate,
                t->total_ms, t->rtf > 0 ? 1.0 / t->rtf : 0.0, t->load_ms, t->prepare_ms,
                t->prefill_ms, t->flowlm_ms, t->mimi_ms, t->first_audio_ms);
    }
done:
    ctts_pcm_free(pcm);
    ctts_session_free(s);
    ctts_voice_free(v);
    ctts_model_free(m);
    free(owned);
    return rc;
}

static int cmd_tokenize(cli_args *a) {
    const char *text;
    char *owned;
    int rc = get_text(a, &text, &owned);
    if (rc) return rc;
    ctts_model *m = NULL;
    if ((rc = load_model(a, &m))) {
        free(owned);
        return rc;
    }
    char err[1024];
    size_t n = 0;
    int32_t *ids = NULL;
    if (ctts_tokenize(m, text, a->prepared, NULL, 0, &n, err, sizeof err) != CTTS_OK) {
        rc = fail("%s", err);
    } else {
        ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids || ctts_tokenize(m, text, a->prepared, ids, n, &n, err, sizeof err) != CTTS_OK) {
            rc = fail("%s", ids ? err : "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
        }
    }
    free(ids);
    free(owned);
    ctts_model_free(m);
    return rc;
}

static int cmd_info(cli_args *a) {
    ctts_model *m = NULL;
    int rc = load_model(a, &m);
    if (rc) return rc;
    size_t need = ctts_model_describe(m, NULL, 0) + 1;
    char *buf = malloc(need);
    if (!buf) rc = fail("%s", "out of memory");
    else {
        ctts_model_describe(m, buf, need);
        fputs(buf, stdout);
    }
    free(buf);
    ctts_model_free(m);
    return rc;
}

static int cmd_dev(int argc, char **argv, cli_args *a) {
    if (argc < 2 || strcmp(argv[1], "make-random-model") != 0)
        return usage_error("%s", "dev needs a subcommand: make-random-model");
    int rc = parse_args(argc - 1, argv + 1, a);
    if (rc) return rc;
    if (!a->config || !a->out)
        return usage_error("%s", "make-random-model needs --config NAME|YAML and --out DIR");
    char err[1024];
    if (ctts_dev_make_random_model(a->config, a->gp_set_seed ? a->seed : 1, a->tokenizer, a->out,
                                   err, sizeof err) != CTTS_OK)
        return fail("%s", err);
    if (!a->quiet) fprintf(stderr, "ctts: wrote a random '%s' model to %s\n", a->config, a->out);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ctts %s\n", ctts_version());
        return 0;
    }
    cli_args a;
    memset(&a, 0, sizeof a);
    a.mp = ctts_model_default_params();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "dev")) return cmd_dev(argc - 1, argv + 1, &a);
    int rc = parse_args(argc - 1, argv + 1, &a);
    if (rc) return rc;
    if (!strcmp(cmd, "generate")) return cmd_generate(&a);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(&a);
    if (!strcmp(cmd, "info")) return cmd_info(&a);
    return usage_error("unknown command '%s'", cmd);
}
