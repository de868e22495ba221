/*
 * Listing of the Hugging Face hub cache (layout in hf.h): for each
 * models--/datasets--/spaces-- folder, its snapshots with the refs naming
 * them, file counts and sizes, plus the repo's blob total and partial
 * downloads. Read-only; it never deletes or repairs anything, and reads
 * caches written by huggingface_hub and by ctts alike.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/hf.h"

#define LPATH 4096
#define MAX_DEPTH 32

typedef struct {
    char **v;
    int n, cap;
} strlist;

static int list_add(strlist *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static void list_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (not "." / ".."), sorted. -1 when dir cannot be opened. */
static int list_dir(const char *dir, strlist *out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (list_add(out, e->d_name)) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return rc;
}

/* Regular files under dir (links followed), recursively. */
static void count_files(const char *dir, int depth, int *n, int64_t *bytes) {
    strlist l = {0};
    if (depth > MAX_DEPTH || list_dir(dir, &l) != 0) {
        list_free(&l);
        return;
    }
    for (int i = 0; i < l.n; i++) {
        char p[LPATH];
        if (snprintf(p, sizeof p, "%s/%s", dir, l.v[i]) >= (int)sizeof p) continue;
        struct stat sb;
        if (stat(p, &sb) != 0) continue; /* dangling link */
        if (S_ISDIR(sb.st_mode)) {
            count_files(p, depth + 1, n, bytes);
        } else if (S_ISREG(sb.st_mode)) {
            (*n)++;
            *bytes += (int64_t)sb.st_size;
        }
    }
    list_free(&l);
}

/* refs/<name...> files: name list and commit list, in parallel. */
static void read_refs(const char *dir, const char *prefix, int depth, strlist *names,
                      strlist *commits) {
    strlist l = {0};
    if (depth > MAX_DEPTH || list_dir(dir, &l) != 0) {
        list_free(&l);
        return;
    }
    for (int i = 0; i < l.n; i++) {
        char p[LPATH], name[LPATH];
        if (snprintf(p, sizeof p, "%s/%s", dir, l.v[i]) >= (int)sizeof p) continue;
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "/" : "", l.v[i]);
        struct stat sb;
        if (stat(p, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            read_refs(p, name, depth + 1, names, commits);
        } else if (S_ISREG(sb.st_mode) && sb.st_size < 128) {
            char c[128] = "";
            FILE *f = fopen(p, "rb");
            size_t k = f ? fread(c, 1, sizeof c - 1, f) : 0;
            if (f) fclose(f);
            c[k] = 0;
            c[strcspn(c, "\r\n ")] = 0;
            if (list_add(names, name) == 0 && list_add(commits, c) != 0) names->n--;
        }
    }
    list_free(&l);
}

static void list_repo(const char *cache_dir, const char *folder, ctts_hub_entry_fn fn,
                      void *user) {
    static const struct {
        const char *prefix, *type;
    } kinds[] = {{"models--", "model"}, {"datasets--", "dataset"}, {"spaces--", "space"}};
    const char *type = NULL, *rest = NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strncmp(folder, kinds[k].prefix, strlen(kinds[k].prefix)) == 0) {
            type = kinds[k].type;
            rest = folder + strlen(kinds[k].prefix);
        }
    if (!type || !*rest) return;
    char repo_id[512];
    size_t o = 0;
    for (const char *c = rest; *c && o + 1 < sizeof repo_id;) {
        if (c[0] == '-' && c[1] == '-') {
            repo_id[o++] = '/';
            c += 2;
        } else {
            repo_id[o++] = *c++;
        }
    }
    repo_id[o] = 0;
    char root[LPATH], p[LPATH + 16];
    if (snprintf(root, sizeof root, "%s/%s", cache_dir, folder) >= (int)sizeof root)
        return;
    ctts_hub_entry e = {.repo_id = repo_id, .repo_type = type, .revision = "", .refs = ""};
    /* blobs */
    strlist blobs = {0};
    snprintf(p, sizeof p, "%s/blobs", root);
    list_dir(p, &blobs);
    for (int i = 0; i < blobs.n; i++) {
        char b[LPATH + 16];
        struct stat sb;
        if (snprintf(b, sizeof b, "%s/%s", p, blobs.v[i]) >= (int)sizeof b) continue;
        if (lstat(b, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        size_t n = strlen(blobs.v[i]);
        if (n > 11 && strcmp(blobs.v[i] + n - 11, ".incomplete") == 0)
            e.incomplete_bytes += (int64_t)sb.st_size;
        else
            e.repo_bytes += (int64_t)sb.st_size;
    }
    list_free(&blobs);
    /* refs and snapshots */
    strlist ref_names = {0}, ref_commits = {0}, snaps = {0};
    snprintf(p, sizeof p, "%s/refs", root);
    read_refs(p, "", 0, &ref_names, &ref_commits);
    snprintf(p, sizeof p, "%s/snapshots", root);
    list_dir(p, &snaps);
    int listed = 0;
    for (int i = 0; i < snaps.n; i++) {
        char sp[LPATH + 16];
        struct stat sb;
        if (snprintf(sp, sizeof sp, "%s/%s", p, snaps.v[i]) >= (int)sizeof sp) continue;
        if (stat(sp, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        char refs[1024] = "";
        size_t ro = 0;
        for (int r = 0; r < ref_names.n; r++)
            if (strcmp(ref_commits.v[r], snaps.v[i]) == 0 && ro < sizeof refs)
                ro += (size_t)snprintf(refs + ro, sizeof refs - ro, "%s%s", ro ? "," : "",
                                       ref_names.v[r]);
        e.revision = snaps.v[i];
        e.refs = refs;
        e.n_files = 0;
        e.bytes = 0;
        count_files(sp, 0, &e.n_files, &e.bytes);
        fn(&e, user);
        listed++;
    }
    if (!listed) fn(&e, user); /* a repo with blobs or partial downloads only */
    list_free(&ref_names);
    list_free(&ref_commits);
    list_free(&snaps);
}

ctts_status hf_list(const char *cache_dir, ctts_hub_entry_fn fn, void *user, char *err,
                    size_t err_len) {
    if (!cache_dir || !*cache_dir || !fn)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "cache directory and callback needed");
    strlist repos = {0};
    if (list_dir(cache_dir, &repos) != 0) {
        int e = errno;
        list_free(&repos);
        if (e == ENOENT) return CTTS_OK;
        return ctts_err(err, err_len, CTTS_E_IO, "cannot read the hub cache %s: %s", cache_dir,
                        strerror(e));
    }
    for (int i = 0; i < repos.n; i++) list_repo(cache_dir, repos.v[i], fn, user);
    list_free(&repos);
    return CTTS_OK;
}
