/*
 * Voices on the command line: `ctts export-voice` (clone an audio file into
 * an official voice-state file) and the --voice loading shared with generate,
 * which picks the cache directory ($XDG_CACHE_HOME/ctts/voices, default
 * ~/.cache/ctts/voices; --no-voice-cache turns it off). The library itself
 * reads no environment variable: the directory is passed in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* $XDG_CACHE_HOME/ctts/voices (when absolute), else $HOME/.cache/ctts/voices; "" if neither. */
static void voice_cache_dir(char *buf, size_t len) {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    buf[0] = 0;
    if (x && x[0] == '/') snprintf(buf, len, "%s/ctts/voices", x);
    else if (h && h[0]) snprintf(buf, len, "%s/.cache/ctts/voices", h);
}

int cli_load_voice(const cli_args *a, ctts_model *m, const char *voice, float max_seconds,
                   ctts_voice **v) {
    char dir[2048], err[1024];
    voice_cache_dir(dir, sizeof dir);
    ctts_voice_params vp = ctts_voice_default_params();
    vp.cache_dir = a->no_voice_cache || !dir[0] ? NULL : dir;
    vp.max_seconds = max_seconds;
    double t0 = now_ms();
    if (ctts_voice_load_ex(m, voice, &vp, v, err, sizeof err) != CTTS_OK) return cli_fail("%s", err);
    if (a->verbose && *v)
        fprintf(stderr, "ctts: voice '%s' ready in %.1f ms\n", voice, now_ms() - t0);
    return 0;
}

int cmd_export_voice(cli_args *a) {
    if (!a->audio || !a->output)
        return cli_usage_error("%s", "export-voice needs --audio FILE and --output FILE");
    if (a->voice) return cli_usage_error("%s", "export-voice takes --audio, not --voice");
    ctts_model *m = NULL;
    int rc = cli_load_model(a, &m);
    if (rc) return rc;
    ctts_voice *v = NULL;
    char err[1024];
    /* As the official export-voice: get_state_for_audio_prompt(truncate=True), 30 s. */
    rc = cli_load_voice(a, m, a->audio, 30.0f, &v);
    if (!rc && !v) rc = cli_usage_error("%s", "export-voice needs an audio file, not 'none'");
    if (!rc && ctts_voice_save(v, a->output, err, sizeof err) != CTTS_OK) rc = cli_fail("%s", err);
    if (!rc && !a->quiet) fprintf(stderr, "ctts: wrote voice %s\n", a->output);
    ctts_voice_free(v);
    ctts_model_free(m);
    return rc;
}
