/*
 * safetensors reader (mmap + strict validation) and writer.
 *
 * Reader data flow: map file -> check u64 header length against the file ->
 * json_parse the header -> one ctts_tensor per entry (validated dtype, shape,
 * offsets, byte span) -> sorted index by name (duplicate check + lookup) ->
 * sorted index by offset (overlap check). The JSON tree stays alive: tensor
 * names and metadata strings point into it.
 *
 * Writer data flow: sort tensors by name -> compact JSON header built in a
 * growable buffer -> space padding -> header + data to "<path>.tmp" -> rename.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/json.h"
#include "io/mmap.h"

struct st_file {
    char *path;
    ctts_mapped_file map;
    json_value *header;
    ctts_tensor *tensors; /* header order */
    int n_tensors;
    int *by_name; /* indices sorted by name */
    const json_value *metadata; /* "__metadata__" object or NULL */
};

/* ---- reading ---- */

typedef int (*tensor_idx_cmp)(const ctts_tensor *, int, int);

static int cmp_name_idx(const ctts_tensor *t, int a, int b) { return strcmp(t[a].name, t[b].name); }

static void sift_down(int *idx, int root, int n, const ctts_tensor *t, tensor_idx_cmp cmp) {
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(t, idx[child], idx[child + 1]) < 0) child++;
        if (cmp(t, idx[root], idx[child]) >= 0) return;
        int tmp = idx[root];
        idx[root] = idx[child];
        idx[child] = tmp;
        root = child;
    }
}

/* Heap sort of an index array (qsort has no context argument in C11). */
static void sort_indices(int *idx, int n, const ctts_tensor *t, tensor_idx_cmp cmp) {
    for (int start = n / 2 - 1; start >= 0; start--) sift_down(idx, start, n, t, cmp);
    for (int end = n - 1; end > 0; end--) {
        int tmp = idx[0];
        idx[0] = idx[end];
        idx[end] = tmp;
        sift_down(idx, 0, end, t, cmp);
    }
}

static int cmp_offset_idx(const ctts_tensor *t, int a, int b) {
    const char *pa = t[a].data, *pb = t[b].data;
    if (pa != pb) return pa < pb ? -1 : 1;
    if (t[a].nbytes != t[b].nbytes) return t[a].nbytes < t[b].nbytes ? -1 : 1;
    return a < b ? -1 : (a > b);
}

void st_close(st_file *f) {
    if (!f) return;
    ctts_unmap_file(&f->map);
    json_free(f->header);
    free(f->tensors);
    free(f->by_name);
    free(f->path);
    free(f);
}

/* Validates one header entry and fills t. Returns 0 or writes err. */
static ctts_status parse_entry(const st_file *f, const char *name, const json_value *e,
                               const unsigned char *data, size_t data_size, ctts_tensor *t,
                               char *err, size_t err_len) {
    const char *path = f->path;
    if (e->type != JSON_OBJECT)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: entry is a %s, not an object (tensor '%s')",
                        path, json_type_name(e->type), name);
    const json_value *dt = json_get(e, "dtype");
    if (!dt || dt->type != JSON_STRING)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: missing or non-string \"dtype\" (tensor '%s')",
                        path, name);
    int dtype = strlen(dt->string) == dt->length ? ctts_dtype_from_name(dt->string) : -1;
    if (dtype < 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: unknown dtype \"%.32s\" (tensor '%s')", path,
                        dt->string, name);
    const json_value *shape = json_get(e, "shape");
    if (!shape || shape->type != JSON_ARRAY)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: missing or non-array \"shape\" (tensor '%s')",
                        path, name);
    if (shape->length > CTTS_MAX_DIMS)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: shape has %zu dims, max %d (tensor '%s')",
                        path, shape->length, CTTS_MAX_DIMS, name);
    const json_value *offs = json_get(e, "data_offsets");
    if (!offs || offs->type != JSON_ARRAY || offs->length != 2)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: \"data_offsets\" must be [begin, end] (tensor '%s')", path, name);
    memset(t, 0, sizeof *t);
    t->dtype = (ctts_dtype)dtype;
    t->ndim = (int)shape->length;
    uint64_t numel = 1;
    int numel_overflow = 0;
    for (size_t d = 0; d < shape->length; d++) {
        const json_value *s = &shape->items[d];
        if (s->type != JSON_NUMBER || !s->is_integer || s->integer < 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT,
                            "%s: shape[%zu] is not a non-negative integer (tensor '%s')", path, d, name);
        t->shape[d] = s->integer;
        uint64_t dim = (uint64_t)s->integer;
        if (dim && numel > UINT64_MAX / dim)
            numel_overflow = 1;
        else
            numel *= dim;
    }
    int64_t range[2];
    for (int k = 0; k < 2; k++) {
        const json_value *o = &offs->items[k];
        if (o->type != JSON_NUMBER || !o->is_integer || o->integer < 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT,
                            "%s: data_offsets[%d] is not a non-negative integer (tensor '%s')", path, k,
                            name);
        range[k] = o->integer;
    }
    if (range[0] > range[1])
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: data_offsets begin %" PRId64 " > end %" PRId64 " (tensor '%s')", path,
                        range[0], range[1], name);
    if ((uint64_t)range[1] > data_size)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: data_offsets end %" PRId64 " past the data section (%zu bytes) (tensor '%s')",
                        path, range[1], data_size, name);
    uint64_t span = (uint64_t)(range[1] - range[0]);
    uint64_t esize = ctts_dtype_size(t->dtype);
    int mismatch = numel_overflow || (numel && esize > UINT64_MAX / numel) || numel * esize != span;
    if (mismatch) {
        char sbuf[128];
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: shape %s x %s (%zu bytes) does not match the %" PRIu64
                        "-byte data_offsets span (tensor '%s')",
                        path, ctts_shape_str(t, sbuf, sizeof sbuf), ctts_dtype_name(t->dtype),
                        (size_t)esize, span, name);
    }
    t->data = (void *)(data + range[0]);
    t->nbytes = (size_t)span;
    t->name = name;
    return CTTS_OK;
}

static ctts_status parse_header(st_file *f, char *err, size_t err_len) {
    const unsigned char *base = f->map.data;
    const char *path = f->path;
    if (f->map.size < 8)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: file is %zu bytes, too short for a safetensors header",
                        path, f->map.size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > (uint64_t)(f->map.size - 8))
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: header length %" PRIu64 " exceeds the file size (%zu bytes)", path, hlen,
                        f->map.size);
    if (hlen > ST_MAX_HEADER_BYTES)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: header length %" PRIu64 " over the 100 MB limit",
                        path, hlen);
    char jerr[200];
    f->header = json_parse((const char *)base + 8, (size_t)hlen, jerr, sizeof jerr);
    if (!f->header)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: header is not valid JSON: %s", path, jerr);
    const json_value *h = f->header;
    if (h->type != JSON_OBJECT)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: header is a JSON %s, not an object", path,
                        json_type_name(h->type));
    const unsigned char *data = base + 8 + hlen;
    size_t data_size = f->map.size - 8 - (size_t)hlen;
    if (h->length > (size_t)INT32_MAX / 2)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: too many header entries", path);
    f->tensors = calloc(h->length ? h->length : 1, sizeof *f->tensors);
    f->by_name = calloc(h->length ? h->length : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    int n = 0;
    for (size_t i = 0; i < h->length; i++) {
        const char *name = h->keys[i];
        const json_value *e = &h->items[i];
        if (strcmp(name, "__metadata__") == 0 && strlen(name) == h->key_lengths[i]) {
            if (f->metadata)
                return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: duplicate \"__metadata__\"", path);
            if (e->type != JSON_OBJECT)
                return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: \"__metadata__\" is a %s, not an object",
                                path, json_type_name(e->type));
            for (size_t k = 0; k < e->length; k++)
                if (e->items[k].type != JSON_STRING)
                    return ctts_err(err, err_len, CTTS_E_FORMAT,
                                    "%s: \"__metadata__\" value for \"%.64s\" is a %s, not a string", path,
                                    e->keys[k], json_type_name(e->items[k].type));
            f->metadata = e;
            continue;
        }
        if (h->key_lengths[i] == 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty tensor name", path);
        if (strlen(name) != h->key_lengths[i])
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor name contains a NUL byte (tensor '%s')",
                            path, name);
        ctts_status st = parse_entry(f, name, e, data, data_size, &f->tensors[n], err, err_len);
        if (st) return st;
        f->by_name[n] = n;
        n++;
    }
    f->n_tensors = n;
    sort_indices(f->by_name, n, f->tensors, cmp_name_idx);
    for (int i = 1; i < n; i++)
        if (strcmp(f->tensors[f->by_name[i - 1]].name, f->tensors[f->by_name[i]].name) == 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: duplicate tensor name (tensor '%s')", path,
                            f->tensors[f->by_name[i]].name);
    int *by_off = malloc((size_t)(n ? n : 1) * sizeof *by_off);
    if (!by_off) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) by_off[i] = i;
    sort_indices(by_off, n, f->tensors, cmp_offset_idx);
    /* Empty tensors occupy no bytes and cannot overlap anything. */
    const ctts_tensor *prev = NULL;
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = &f->tensors[by_off[i]];
        if (!t->nbytes) continue;
        if (prev && (const char *)prev->data + prev->nbytes > (const char *)t->data) {
            ctts_status st = ctts_err(err, err_len, CTTS_E_FORMAT,
                                      "%s: data of tensors '%s' and '%s' overlap (tensor '%s')", path,
                                      prev->name, t->name, t->name);
            free(by_off);
            return st;
        }
        prev = t;
    }
    free(by_off);
    return CTTS_OK;
}

ctts_status st_open(const char *path, st_file **out, char *err, size_t err_len) {
    *out = NULL;
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "st_open: path is NULL");
    st_file *f = calloc(1, sizeof *f);
    if (!f) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    }
    ctts_status st = ctts_map_file(path, &f->map, err, err_len);
    if (!st) st = parse_header(f, err, err_len);
    if (st) {
        st_close(f);
        return st;
    }
    *out = f;
    return CTTS_OK;
}

int st_count(const st_file *f) { return f ? f->n_tensors : 0; }

const ctts_tensor *st_tensor(const st_file *f, int i) {
    if (!f || i < 0 || i >= f->n_tensors) return NULL;
    return &f->tensors[i];
}

const ctts_tensor *st_find(const st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const ctts_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const char *st_path(const st_file *f) { return f ? f->path : ""; }

int st_is_aligned(const ctts_tensor *t) {
    size_t a = ctts_dtype_size(t->dtype);
    if (a <= 1) return 1;
    return ((uintptr_t)t->data % a) == 0;
}

int st_metadata_count(const st_file *f) { return f && f->metadata ? (int)f->metadata->length : 0; }

const char *st_metadata_key(const st_file *f, int i) {
    if (i < 0 || i >= st_metadata_count(f)) return NULL;
    return f->metadata->keys[i];
}

const char *st_metadata_value(const st_file *f, int i) {
    if (i < 0 || i >= st_metadata_count(f)) return NULL;
    return f->metadata->items[i].string;
}

const char *st_metadata_get(const st_file *f, const char *key) {
    if (!f || !f->metadata) return NULL;
    const json_value *v = json_get(f->metadata, key);
    return v ? v->string : NULL;
}

/* ---- writing ---- */

typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_append(text_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) tb_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* JSON string escaping as serde_json writes it (the Python library's serializer). */
static void tb_json_string(text_buf *b, const char *s) {
    tb_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        switch (c) {
        case '"': tb_append(b, "\\\"", 2); break;
        case '\\': tb_append(b, "\\\\", 2); break;
        case '\b': tb_append(b, "\\b", 2); break;
        case '\f': tb_append(b, "\\f", 2); break;
        case '\n': tb_append(b, "\\n", 2); break;
        case '\r': tb_append(b, "\\r", 2); break;
        case '\t': tb_append(b, "\\t", 2); break;
        default:
            if (c < 0x20)
                tb_printf(b, "\\u%04x", c);
            else
                tb_append(b, (const char *)p, 1);
        }
    }
    tb_append(b, "\"", 1);
}

ctts_status st_write_meta(const char *path, const ctts_tensor *tensors, int n,
                          const char *const *meta_keys, const char *const *meta_values, int n_meta,
                          char *err, size_t err_len) {
    if (!path || n < 0 || (n > 0 && !tensors) || n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "st_write: invalid arguments");
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = &tensors[i];
        if (!t->name || !t->name[0])
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: tensor %d has no name", path, i);
        if (strcmp(t->name, "__metadata__") == 0)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: reserved tensor name '__metadata__'", path);
        size_t es = ctts_dtype_size(t->dtype);
        if (!es)
            return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: dtype %s cannot be written (tensor '%s')",
                            path, ctts_dtype_name(t->dtype), t->name);
        if (t->ndim < 0 || t->ndim > CTTS_MAX_DIMS)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: bad ndim %d (tensor '%s')", path, t->ndim,
                            t->name);
        uint64_t numel = 1;
        int bad = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) bad = 1;
            uint64_t dim = (uint64_t)t->shape[d];
            if (dim && numel > UINT64_MAX / dim) bad = 1;
            else numel *= dim;
        }
        if (bad || (numel && es > UINT64_MAX / numel) || numel * es != t->nbytes)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "%s: nbytes %zu does not match shape x dtype (tensor '%s')", path, t->nbytes, t->name);
        if (t->nbytes && !t->data)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: data is NULL (tensor '%s')", path, t->name);
    }
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) order[i] = i;
    sort_indices(order, n, tensors, cmp_name_idx);
    for (int i = 1; i < n; i++)
        if (strcmp(tensors[order[i - 1]].name, tensors[order[i]].name) == 0) {
            ctts_status st = ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                      "%s: duplicate tensor name (tensor '%s')", path, tensors[order[i]].name);
            free(order);
            return st;
        }

    text_buf hb = {0};
    tb_append(&hb, "{", 1);
    int first = 1;
    if (n_meta > 0) {
        tb_append(&hb, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if (i) tb_append(&hb, ",", 1);
            tb_json_string(&hb, meta_keys[i] ? meta_keys[i] : "");
            tb_append(&hb, ":", 1);
            tb_json_string(&hb, meta_values[i] ? meta_values[i] : "");
        }
        tb_append(&hb, "}", 1);
        first = 0;
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = &tensors[order[i]];
        if (!first) tb_append(&hb, ",", 1);
        first = 0;
        tb_json_string(&hb, t->name);
        tb_append(&hb, ":{\"dtype\":", 10);
        tb_json_string(&hb, ctts_dtype_name(t->dtype));
        tb_append(&hb, ",\"shape\":[", 10);
        for (int d = 0; d < t->ndim; d++) tb_printf(&hb, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        tb_printf(&hb, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + t->nbytes);
        offset += t->nbytes;
    }
    tb_append(&hb, "}", 1);
    while (!hb.oom && hb.len % 8) tb_append(&hb, " ", 1);
    if (hb.oom) {
        free(hb.data);
        free(order);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(hb.data);
        free(order);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    ctts_status st = CTTS_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", tmp, strerror(errno));
    } else {
        unsigned char lenbytes[8];
        uint64_t hl = hb.len;
        for (int i = 0; i < 8; i++) lenbytes[i] = (unsigned char)(hl >> (8 * i));
        int ok = fwrite(lenbytes, 1, 8, fp) == 8 && fwrite(hb.data, 1, hb.len, fp) == hb.len;
        for (int i = 0; ok && i < n; i++) {
            const ctts_tensor *t = &tensors[order[i]];
            if (t->nbytes) ok = fwrite(t->data, 1, t->nbytes, fp) == t->nbytes;
        }
        int e = errno;
        if (fclose(fp) != 0 && ok) {
            ok = 0;
            e = errno;
        }
        if (!ok) {
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", tmp, strerror(e));
            remove(tmp);
        } else if (rename(tmp, path) != 0) {
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
            remove(tmp);
        }
    }
    free(tmp);
    free(hb.data);
    free(order);
    return st;
}

ctts_status st_write(const char *path, const ctts_tensor *tensors, int n, char *err, size_t err_len) {
    static const char *const keys[] = {"format"};
    static const char *const values[] = {"pt"};
    return st_write_meta(path, tensors, n, keys, values, 1, err, err_len);
}
