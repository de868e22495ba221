/* ctts generate / tokenize / info / dev: the one-shot commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_generate(cli_args *a) {
    if (!a->output) return cli_usage_error("%s", "generate needs --output FILE.wav");
    const char *text;
    char *owned;
    int rc = cli_get_text(a, &text, &owned);
    if (rc) return rc;
    ctts_model *m = NULL;
    ctts_voice *v = NULL;
    ctts_session *s = NULL;
    float *pcm = NULL;
    size_t n = 0;
    char err[1024];
    if (!a->model) a->model = "english"; /* the official default language */
    if ((rc = cli_load_model(a, &m))) goto done;
    /* No --voice: the language's default voice for a built-in model, else none. */
    const char *voice = a->voice ? a->voice : ctts_model_default_voice(m);
    /* The official generate clones from the whole clip (no 30 s cut). */
    if ((rc = cli_load_voice(a, m, voice, 0.0f, &v))) goto done;
    if (ctts_session_new(m, &s) != CTTS_OK) {
        rc = cli_fail("%s", "cannot create a session (out of memory?)");
        goto done;
    }
    ctts_gen_params gp = ctts_gen_default_params(m);
    cli_apply_gen_args(a, &gp);
    if (ctts_synthesize(s, text, v, &gp, &pcm, &n) != CTTS_OK) {
        rc = cli_fail("%s", ctts_session_error(s));
        goto done;
    }
    if (ctts_wav_write(a->output, pcm, n, ctts_model_get_info(m)->sample_rate,
                       a->wav_f32 ? CTTS_WAV_F32 : CTTS_WAV_S16, err, sizeof err) != CTTS_OK) {
        rc = cli_fail("%s", err);
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

int cmd_tokenize(cli_args *a) {
    const char *text;
    char *owned;
    int rc = cli_get_text(a, &text, &owned);
    if (rc) return rc;
    ctts_model *m = NULL;
    if ((rc = cli_load_model(a, &m))) {
        free(owned);
        return rc;
    }
    char err[1024];
    size_t n = 0;
    int32_t *ids = NULL;
    if (ctts_tokenize(m, text, a->prepared, NULL, 0, &n, err, sizeof err) != CTTS_OK) {
        rc = cli_fail("%s", err);
    } else {
        ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids || ctts_tokenize(m, text, a->prepared, ids, n, &n, err, sizeof err) != CTTS_OK) {
            rc = cli_fail("%s", ids ? err : "out of memory");
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

int cmd_info(cli_args *a) {
    ctts_model *m = NULL;
    int rc = cli_load_model(a, &m);
    if (rc) return rc;
    size_t need = ctts_model_describe(m, NULL, 0) + 1;
    char *buf = malloc(need);
    if (!buf) rc = cli_fail("%s", "out of memory");
    else {
        ctts_model_describe(m, buf, need);
        fputs(buf, stdout);
    }
    free(buf);
    ctts_model_free(m);
    return rc;
}

int cmd_dev(int argc, char **argv, cli_args *a) {
    const int membw = argc >= 2 && !strcmp(argv[1], "membw");
    if (argc < 2 || (!membw && strcmp(argv[1], "make-random-model") != 0))
        return cli_usage_error("%s", "dev needs a subcommand: make-random-model or membw");
    int rc = cli_parse_args(argc - 1, argv + 1, a);
    if (rc) return rc;
    if (membw) return cmd_membw(a);
    if (!a->config || !a->out)
        return cli_usage_error("%s", "make-random-model needs --config NAME|YAML and --out DIR");
    char err[1024];
    if (ctts_dev_make_random_model(a->config, a->gp_set_seed ? a->seed : 1, a->tokenizer, a->out,
                                   err, sizeof err) != CTTS_OK)
        return cli_fail("%s", err);
    if (!a->quiet) fprintf(stderr, "ctts: wrote a random '%s' model to %s\n", a->config, a->out);
    return 0;
}

