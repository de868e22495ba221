/*
 * Helpers shared by the tests that read golden safetensors files: open a
 * file of a golden set, look tensors up for the binding code (optionally
 * hiding one or answering one name with another tensor, to provoke binding
 * errors), and copy a golden F32 tensor out (golden tensors may sit at
 * unaligned offsets, so they are never read in place as floats).
 */
#ifndef CTTS_TEST_GOLDEN_H
#define CTTS_TEST_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"

/* Opens <golden>/<set>/<rel>; NULL (with a message on stderr) if it fails. */
static inline st_file *golden_open(const char *set, const char *rel) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s/%s", test_golden_dir(), set, rel);
    st_file *f = NULL;
    if (st_open(path, &f, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    cannot open %s: %s\n", path, err);
        return NULL;
    }
    return f;
}

/* A weight lookup over one safetensors file (ctx is the st_file). */
static inline const ctts_tensor *st_lookup(void *ctx, const char *name) {
    return st_find((const st_file *)ctx, name);
}

/* A lookup that hides one tensor and/or answers one name with another tensor. */
typedef struct {
    st_file *f;
    const char *hide;
    const char *swap_name, *swap_with;
} wrapped_lookup;

static inline const ctts_tensor *wrapped(void *ctx, const char *name) {
    wrapped_lookup *w = ctx;
    if (w->hide && strcmp(name, w->hide) == 0) return NULL;
    if (w->swap_name && strcmp(name, w->swap_name) == 0) return st_find(w->f, w->swap_with);
    return st_find(w->f, name);
}

/* Copies a golden F32 tensor of numel n into a malloc'd array (NULL if absent or wrong size). */
static inline float *golden_floats(st_file *f, const char *name, size_t n) {
    const ctts_tensor *t = st_find(f, name);
    if (!t || t->dtype != CTTS_DT_F32 || (size_t)ctts_tensor_numel(t) != n) {
        fprintf(stderr, "    golden tensor '%s' missing or not %zu floats\n", name, n);
        return NULL;
    }
    float *p = malloc(n * sizeof(float) + 1);
    if (p) memcpy(p, t->data, n * sizeof(float));
    return p;
}

#endif
