/*
 * Hugging Face hub in the ctts CLI: the environment (read here, never in the
 * library) turned into ctts_hub_params, the progress bar, and the commands
 *
 *   ctts pull [MODEL] [--voice V|all|none] [--offline]   fill the hub cache
 *   ctts models                                          list what it holds
 *
 * Environment, as huggingface_hub reads it: HF_HUB_CACHE (or the older
 * HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub; HF_ENDPOINT; HF_TOKEN (or the older
 * HUGGING_FACE_HUB_TOKEN), else the token file HF_TOKEN_PATH or HF_HOME/token;
 * HF_HUB_OFFLINE=1|true|yes|on. The progress bar goes to stderr on a
 * terminal only, never with --quiet or HF_HUB_DISABLE_PROGRESS_BARS=1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static int env_true(const char *v) {
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
                 !strcasecmp(v, "on"));
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Copies v into out, expanding a leading "~/" with $HOME. */
static void expand_user(char *out, size_t cap, const char *v) {
    const char *home = env("HOME");
    if (v[0] == '~' && (v[1] == '/' || !v[1]) && home)
        snprintf(out, cap, "%s%s", home, v + 1);
    else
        snprintf(out, cap, "%s", v);
}

/* ---- progress bar ---- */

typedef struct {
    char what[128];
    double t_start, t_last;
    int64_t last_done;
    int open; /* a bar line is on screen */
} bar_state;

static bar_state bar; /* the CLI is single-threaded; the library keeps no state */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(char *out, size_t cap, double bytes) {
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) {
        bytes /= 1000;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

static int progress_bar(const char *what, int64_t done, int64_t total, void *user) {
    const cli_args *a = user;
    if (a->quiet || !isatty(2)) return 0;
    double t = now_s();
    if (strcmp(bar.what, what) != 0 || done < bar.last_done) {
        snprintf(bar.what, sizeof bar.what, "%s", what);
        bar.t_start = t;
        bar.t_last = 0;
    }
    bar.last_done = done;
    int finished = total >= 0 && done >= total;
    if (!finished && t - bar.t_last < 0.1) return 0;
    bar.t_last = t;
    char d[32], tot[32], rate[32];
    human(d, sizeof d, (double)done);
    human(tot, sizeof tot, (double)total);
    double el = t - bar.t_start;
    rate[0] = 0;
    if (el > 0.2) {
        human(rate, sizeof rate, (double)done / el);
        strcat(rate, "/s");
    }
    if (total > 0) {
        int pct = (int)(100.0 * (double)done / (double)total);
        int fill = pct * 24 / 100;
        fprintf(stderr, "\r%-24.24s [%.*s%*s] %3d%% %s / %s  %s   ", what, fill,
                "########################", 24 - fill, "", pct, d, tot, rate);
    } else {
        fprintf(stderr, "\r%-24.24s %s  %s   ", what, d, rate);
    }
    bar.open = !finished;
    if (finished) fprintf(stderr, "\n");
    fflush(stderr);
    return 0;
}

void cli_progress_end(void) {
    if (bar.open) fprintf(stderr, "\n");
    bar.open = 0;
}

void cli_hub_setup(cli_args *a) {
    ctts_hub_params *h = &a->mp.hub;
    char hf_home[1024] = "";
    const char *v;
    if ((v = env("HF_HOME")))
        expand_user(hf_home, sizeof hf_home, v);
    else if ((v = env("XDG_CACHE_HOME")))
        snprintf(hf_home, sizeof hf_home, "%s/huggingface", v);
    else if ((v = env("HOME")))
        snprintf(hf_home, sizeof hf_home, "%s/.cache/huggingface", v);
    if ((v = env("HF_HUB_CACHE")) || (v = env("HUGGINGFACE_HUB_CACHE")))
        expand_user(a->hub_cache, sizeof a->hub_cache, v);
    else if (hf_home[0])
        snprintf(a->hub_cache, sizeof a->hub_cache, "%s/hub", hf_home);
    h->cache_dir = a->hub_cache[0] ? a->hub_cache : NULL;
    h->endpoint = env("HF_ENDPOINT");
    if ((v = env("HF_TOKEN")) || (v = env("HUGGING_FACE_HUB_TOKEN"))) {
        snprintf(a->hub_token, sizeof a->hub_token, "%s", v);
    } else {
        char path[1100];
        if ((v = env("HF_TOKEN_PATH")))
            expand_user(path, sizeof path, v);
        else
            snprintf(path, sizeof path, "%s/token", hf_home);
        FILE *f = hf_home[0] || env("HF_TOKEN_PATH") ? fopen(path, "rb") : NULL;
        if (f) {
            size_t n = fread(a->hub_token, 1, sizeof a->hub_token - 1, f);
            fclose(f);
            a->hub_token[n] = 0;
        }
    }
    /* A token is one line; whitespace around it is not part of it. */
    char *t = a->hub_token;
    size_t n = strlen(t);
    while (n && strchr(" \t\r\n", t[n - 1])) t[--n] = 0;
    size_t lead = strspn(t, " \t\r\n");
    memmove(t, t + lead, n - lead + 1);
    h->token = t[0] ? t : NULL;
    h->offline = env_true(getenv("HF_HUB_OFFLINE"));
    h->progress = env_true(getenv("HF_HUB_DISABLE_PROGRESS_BARS")) ? NULL : progress_bar;
    h->progress_user = a;
}

/* ---- ctts pull ---- */

static int pull_voice(cli_args *a, const char *model, const char *voice, int quiet_missing) {
    char err[1024];
    ctts_status st = ctts_model_pull(model, &a->mp, voice, NULL, err, sizeof err);
    if (st == CTTS_E_NOT_FOUND && quiet_missing) {
        if (!a->quiet) printf("voice %s: not available for %s\n", voice, model);
        return 0;
    }
    if (st != CTTS_OK) return cli_fail("%s", err);
    if (!a->quiet) printf("voice %s: ready\n", voice);
    return 0;
}

int cmd_pull(int argc, char **argv, cli_args *a) {
    int rc;
    if (argc >= 2 && argv[1][0] != '-') {
        a->model = argv[1];
        rc = cli_parse_args(argc - 1, argv + 1, a); /* argv[1] plays the command name */
    } else {
        rc = cli_parse_args(argc, argv, a);
    }
    if (rc) return rc;
    const char *model = a->model ? a->model : "english";
    if (!a->mp.hub.cache_dir)
        return cli_fail("%s", "no hub cache directory: set HF_HUB_CACHE, HF_HOME or HOME");
    char err[1024];
    int cloning = 0;
    if (ctts_model_pull(model, &a->mp, "none", &cloning, err, sizeof err) != CTTS_OK)
        return cli_fail("%s", err);
    if (!a->quiet)
        printf("%s: ready in %s, %s\n", model, a->mp.hub.cache_dir,
               cloning ? "weights with voice cloning"
                       : "weights without voice cloning (the voice-cloning repo was refused "
                         "or missing: accept its terms on huggingface.co and set HF_TOKEN)");
    const char *voice = a->voice;
    if (voice && !strcmp(voice, "none")) return 0;
    if (voice && !strcmp(voice, "all")) {
        for (int i = 0; ctts_voice_catalog_name(i); i++)
            if ((rc = pull_voice(a, model, ctts_voice_catalog_name(i), 1))) return rc;
        return 0;
    }
    if (!voice) { /* the default voice of a built-in language */
        int builtin = 0;
        for (int i = 0; ctts_model_builtin_name(i); i++)
            builtin |= !strcmp(ctts_model_builtin_name(i), model);
        if (!builtin) return 0;
    }
    rc = ctts_model_pull(model, &a->mp, voice, NULL, err, sizeof err) != CTTS_OK;
    if (rc) return cli_fail("%s", err);
    if (!a->quiet) {
        if (voice) printf("voice %s: ready\n", voice);
        else printf("default voice: ready\n");
    }
    return 0;
}

/* ---- ctts models ---- */

static void print_entry(const ctts_hub_entry *e, void *user) {
    const char **last = user;
    char size[32], total[32], part[32];
    if (!*last || strcmp(*last, e->repo_id) != 0) {
        human(total, sizeof total, (double)e->repo_bytes);
        printf("%s  (%s, %s on disk", e->repo_id, e->repo_type, total);
        if (e->incomplete_bytes) {
            human(part, sizeof part, (double)e->incomplete_bytes);
            printf(", %s of partial downloads", part);
        }
        printf(")\n");
        free((void *)*last);
        *last = strdup(e->repo_id);
    }
    if (!e->revision[0]) {
        printf("  (no snapshot yet)\n");
        return;
    }
    human(size, sizeof size, (double)e->bytes);
    printf("  %s  %3d file%s  %10s%s%s%s\n", e->revision, e->n_files, e->n_files == 1 ? " " : "s",
           size, e->refs[0] ? "  [" : "", e->refs, e->refs[0] ? "]" : "");
}

int cmd_models(cli_args *a) {
    const char *cache = a->mp.hub.cache_dir;
    if (!cache) return cli_fail("%s", "no hub cache directory: set HF_HUB_CACHE, HF_HOME or HOME");
    char err[1024];
    const char *last = NULL;
    printf("hub cache: %s\n", cache);
    ctts_status st = ctts_hub_list(cache, print_entry, &last, err, sizeof err);
    free((void *)last);
    if (st != CTTS_OK) return cli_fail("%s", err);
    if (!last) printf("  (empty)\n");
    printf("built-in models (offline check):\n");
    ctts_model_params mp = a->mp;
    mp.hub.offline = 1;
    mp.hub.progress = NULL;
    for (int i = 0; ctts_model_builtin_name(i); i++) {
        const char *name = ctts_model_builtin_name(i);
        int cloning = 0;
        if (ctts_model_pull(name, &mp, "none", &cloning, err, sizeof err) != CTTS_OK) {
            printf("  %-16s not downloaded (ctts pull %s)\n", name, name);
            continue;
        }
        int voice_ok = ctts_model_pull(name, &mp, NULL, NULL, err, sizeof err) == CTTS_OK;
        printf("  %-16s ready, %s voice cloning; default voice %s\n", name,
               cloning ? "with" : "without", voice_ok ? "cached" : "not cached");
    }
    return 0;
}
