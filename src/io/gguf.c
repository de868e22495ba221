/*
 * GGUF v3 reader / writer (see gguf.h). The reader walks the header with a
 * bounds-checked cursor over the mapping; every count, length, dimension
 * and offset is checked against the file size before use.
 */
#include "io/gguf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/mmap.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" */
#define GGUF_ALIGN 32
#define MAX_TENSORS (1 << 20)
#define MAX_KV (1 << 20)
#define MAX_STR (1 << 20)

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 };

struct gguf_file {
    ctts_mapped_file map;
    char *path;
    int n;
    ctts_tensor *t;
    char **names;
    int n_str;
    char **str_kv; /* [2 * n_str]: key, value */
};

typedef struct {
    const unsigned char *p;
    size_t size, off;
    int bad;
} cursor;

static int take(cursor *c, void *dst, size_t n) {
    if (c->bad || n > c->size - c->off) {
        c->bad = 1;
        return 0;
    }
    if (dst) memcpy(dst, c->p + c->off, n);
    c->off += n;
    return 1;
}

static uint64_t u64(cursor *c) {
    uint64_t v = 0;
    take(c, &v, 8);
    return v;
}
static uint32_t u32(cursor *c) {
    uint32_t v = 0;
    take(c, &v, 4);
    return v;
}

/* A string: returns a pointer into the mapping and its length (not NUL-terminated). */
static const char *str(cursor *c, size_t *len) {
    uint64_t n = u64(c);
    if (c->bad || n > MAX_STR || n > c->size - c->off) {
        c->bad = 1;
        return NULL;
    }
    const char *s = (const char *)c->p + c->off;
    c->off += (size_t)n;
    *len = (size_t)n;
    return s;
}

static size_t scalar_size(uint32_t type) {
    switch (type) {
    case T_U8: case T_I8: case T_BOOL: return 1;
    case T_U16: case T_I16: return 2;
    case T_U32: case T_I32: case T_F32: return 4;
    case T_U64: case T_I64: case T_F64: return 8;
    default: return 0;
    }
}

/* Skips one value of the given type (arrays of scalars or strings). */
static void skip_value(cursor *c, uint32_t type, int depth) {
    size_t len;
    if (type == T_STR) {
        str(c, &len);
    } else if (type == T_ARR) {
        const uint32_t et = u32(c);
        const uint64_t n = u64(c);
        if (depth > 2 || n > c->size) {
            c->bad = 1;
            return;
        }
        const size_t es = scalar_size(et);
        if (es) {
            if (n > (c->size - c->off) / es) c->bad = 1;
            else c->off += (size_t)n * es;
        } else
            for (uint64_t i = 0; i < n && !c->bad; i++) skip_value(c, et, depth + 1);
    } else {
        const size_t es = scalar_size(type);
        if (!es) c->bad = 1;
        else take(c, NULL, es);
    }
}

static int dtype_of(uint32_t ggml, ctts_dtype *dt) {
    switch (ggml) {
    case 0: *dt = CTTS_DT_F32; return 1;
    case 1: *dt = CTTS_DT_F16; return 1;
    case 2: *dt = CTTS_DT_Q4_0; return 1;
    case 8: *dt = CTTS_DT_Q8_0; return 1;
    case 30: *dt = CTTS_DT_BF16; return 1;
    default: return 0;
    }
}

static int ggml_of(ctts_dtype dt, uint32_t *ggml) {
    switch (dt) {
    case CTTS_DT_F32: *ggml = 0; return 1;
    case CTTS_DT_F16: *ggml = 1; return 1;
    case CTTS_DT_Q4_0: *ggml = 2; return 1;
    case CTTS_DT_Q8_0: *ggml = 8; return 1;
    case CTTS_DT_BF16: *ggml = 30; return 1;
    default: return 0;
    }
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->names ? f->names[i] : NULL);
    for (int i = 0; i < 2 * f->n_str; i++) free(f->str_kv[i]);
    free(f->names);
    free(f->str_kv);
    free(f->t);
    free(f->path);
    ctts_unmap_file(&f->map);
    free(f);
}

static ctts_status parse(gguf_file *f, char *err, size_t err_len) {
    cursor c = {.p = f->map.data, .size = f->map.size};
    const char *path = f->path;
    if (u32(&c) != GGUF_MAGIC || c.bad)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: not a GGUF file (bad magic)", path);
    const uint32_t version = u32(&c);
    if (version != 3)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: GGUF version %u (only 3 is read)", path,
                        version);
    const uint64_t n_t = u64(&c), n_kv = u64(&c);
    if (c.bad || n_t > MAX_TENSORS || n_kv > MAX_KV)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: bad tensor/metadata counts", path);
    uint64_t align = GGUF_ALIGN;
    f->str_kv = calloc((size_t)n_kv * 2 + 1, sizeof *f->str_kv);
    if (!f->str_kv) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n_kv && !c.bad; i++) {
        size_t kl;
        const char *k = str(&c, &kl);
        const uint32_t type = u32(&c);
        if (c.bad) break;
        if (type == T_STR) {
            size_t vl;
            const char *v = str(&c, &vl);
            if (c.bad) break;
            f->str_kv[2 * f->n_str] = dup_n(k, kl);
            f->str_kv[2 * f->n_str + 1] = dup_n(v, vl);
            if (!f->str_kv[2 * f->n_str] || !f->str_kv[2 * f->n_str + 1])
                return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
            f->n_str++;
        } else if (kl == 17 && !memcmp(k, "general.alignment", 17) && type == T_U32) {
            align = u32(&c);
            if (align == 0 || (align & (align - 1)) || align > 65536)
                return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: bad general.alignment", path);
        } else
            skip_value(&c, type, 0);
    }
    if (c.bad) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: truncated metadata", path);
    f->t = calloc((size_t)n_t + 1, sizeof *f->t);
    f->names = calloc((size_t)n_t + 1, sizeof *f->names);
    uint64_t *offs = calloc((size_t)n_t + 1, sizeof *offs);
    if (!f->t || !f->names || !offs) {
        free(offs);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    }
    ctts_status st = CTTS_OK;
    for (uint64_t i = 0; i < n_t && st == CTTS_OK; i++) {
        size_t nl;
        const char *name = str(&c, &nl);
        const uint32_t nd = u32(&c);
        if (c.bad || nd < 1 || nd > 4) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: bad tensor info %llu", path,
                          (unsigned long long)i);
            break;
        }
        ctts_tensor *t = &f->t[i];
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            const uint64_t ne = u64(&c);
            if (ne == 0 || ne > ((uint64_t)1 << 40) || numel > ((uint64_t)1 << 40) / ne) c.bad = 1;
            else numel *= ne;
            t->shape[nd - 1 - d] = (int64_t)ne; /* GGUF lists the innermost dim first */
        }
        const uint32_t gt = u32(&c);
        offs[i] = u64(&c);
        f->names[i] = c.bad ? NULL : dup_n(name, nl);
        if (c.bad) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: truncated tensor infos", path);
        } else if (!f->names[i]) {
            st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
        } else if (!dtype_of(gt, &t->dtype)) {
            st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: tensor '%s': ggml type %u not supported",
                          path, f->names[i], gt);
        } else if (ctts_dtype_size(t->dtype) == 0 && t->shape[nd - 1] % 32) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor '%s': rows not a multiple of 32",
                          path, f->names[i]);
        } else {
            t->name = f->names[i];
            t->nbytes = ctts_dtype_row_bytes(t->dtype, t->shape[nd - 1]) *
                        (size_t)(numel / (uint64_t)t->shape[nd - 1]);
        }
        f->n = (int)i + 1;
    }
    if (st == CTTS_OK) {
        const uint64_t data = (c.off + align - 1) / align * align;
        for (int i = 0; i < f->n && st == CTTS_OK; i++) {
            ctts_tensor *t = &f->t[i];
            if (data > f->map.size || offs[i] % align || offs[i] > f->map.size - data ||
                t->nbytes > f->map.size - data - offs[i])
                st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor '%s': data out of range",
                              path, t->name);
            else
                t->data = (char *)f->map.data + data + offs[i];
        }
    }
    free(offs);
    return st;
}

ctts_status gguf_open(const char *path, gguf_file **out, char *err, size_t err_len) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_n(path, strlen(path)))) {
        free(f);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    ctts_status st = ctts_map_file(path, &f->map, err, err_len);
    if (st == CTTS_OK) st = parse(f, err, err_len);
    if (st != CTTS_OK) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return CTTS_OK;
}

int gguf_count(const gguf_file *f) { return f ? f->n : 0; }
const ctts_tensor *gguf_tensor(const gguf_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}
const char *gguf_path(const gguf_file *f) { return f ? f->path : ""; }
const char *gguf_get_str(const gguf_file *f, const char *key) {
    for (int i = 0; f && i < f->n_str; i++)
        if (!strcmp(f->str_kv[2 * i], key)) return f->str_kv[2 * i + 1];
    return NULL;
}

/* ---- writer ---- */

static int w_bytes(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }
static int w_u32(FILE *fp, uint32_t v) { return w_bytes(fp, &v, 4); }
static int w_u64(FILE *fp, uint64_t v) { return w_bytes(fp, &v, 8); }
static int w_str(FILE *fp, const char *s) {
    const size_t n = strlen(s);
    return w_u64(fp, n) && w_bytes(fp, s, n);
}

ctts_status gguf_write(const char *path, const ctts_tensor *const *tensors, int n,
                       const char *const *kv, int n_kv, char *err, size_t err_len) {
    for (int i = 0; i < n; i++) {
        uint32_t g;
        if (!tensors[i]->name || !ggml_of(tensors[i]->dtype, &g) || tensors[i]->ndim < 1 ||
            tensors[i]->ndim > 4)
            return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: tensor '%s' (%s) cannot be written",
                            path, tensors[i]->name ? tensors[i]->name : "?",
                            ctts_dtype_name(tensors[i]->dtype));
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) return ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s'", path);
    int ok = w_u32(fp, GGUF_MAGIC) && w_u32(fp, 3) && w_u64(fp, (uint64_t)n) &&
             w_u64(fp, (uint64_t)n_kv + 1);
    ok = ok && w_str(fp, "general.alignment") && w_u32(fp, T_U32) && w_u32(fp, GGUF_ALIGN);
    for (int i = 0; ok && i < n_kv; i++)
        ok = w_str(fp, kv[2 * i]) && w_u32(fp, T_STR) && w_str(fp, kv[2 * i + 1]);
    uint64_t off = 0;
    for (int i = 0; ok && i < n; i++) {
        const ctts_tensor *t = tensors[i];
        uint32_t g = 0;
        ggml_of(t->dtype, &g);
        ok = w_str(fp, t->name) && w_u32(fp, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; ok && d >= 0; d--) ok = w_u64(fp, (uint64_t)t->shape[d]);
        ok = ok && w_u32(fp, g) && w_u64(fp, off);
        off = (off + t->nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    }
    static const unsigned char zeros[GGUF_ALIGN];
    long pos = ok ? ftell(fp) : -1;
    if (pos < 0) ok = 0;
    else ok = w_bytes(fp, zeros, (size_t)((GGUF_ALIGN - pos % GGUF_ALIGN) % GGUF_ALIGN));
    for (int i = 0; ok && i < n; i++) {
        const ctts_tensor *t = tensors[i];
        ok = w_bytes(fp, t->data, t->nbytes) &&
             w_bytes(fp, zeros, (GGUF_ALIGN - t->nbytes % GGUF_ALIGN) % GGUF_ALIGN);
    }
    if (fclose(fp) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s' (disk full?)", path);
    }
    return CTTS_OK;
}
