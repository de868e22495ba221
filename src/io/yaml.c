/*
 * libyaml document -> json_value conversion.
 *
 * libyaml's loader resolves aliases into references to the anchored node (so
 * a document is a graph, possibly cyclic). The conversion walks it from the
 * root, copying each referenced node; output nodes beyond the document's own
 * node count are alias expansions and are capped by YAML_MAX_ALIAS_NODES,
 * and nesting is capped by JSON_MAX_DEPTH, so hostile input cannot explode
 * memory or the stack. Scalar typing follows the rules in yaml.h.
 */
#include "io/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct {
    yaml_document_t *doc;
    size_t produced;  /* output nodes so far */
    size_t budget;    /* document nodes + alias allowance */
    const char *name; /* for errors */
    char *err;
    size_t err_len;
} yaml_converter;

static int conv_fail(yaml_converter *c, const yaml_node_t *n, const char *what) {
    if (c->err && c->err_len)
        snprintf(c->err, c->err_len, "%s: line %zu column %zu: %s", c->name,
                 n ? (size_t)n->start_mark.line + 1 : 1, n ? (size_t)n->start_mark.column + 1 : 1, what);
    return -1;
}

static int ascii_ieq(const char *s, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Decimal integer with optional sign, or 0x hex. Returns 1 and sets *out when s is one. */
static int scalar_integer(const char *s, size_t n, int64_t *out, int *fits) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= n) return 0;
    unsigned base = 10;
    if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        base = 16;
        i += 2;
    }
    uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    *fits = 1;
    for (; i < n; i++) {
        unsigned d;
        char ch = s[i];
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (base == 16 && ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (base == 16 && ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return 0;
        if (acc > (limit - d) / base) *fits = 0;
        if (*fits) acc = acc * base + d;
    }
    if (*fits) *out = neg ? (acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 1;
}

/* [-+]?(digits[.digits?]|.digits)([eE][-+]?digits)? or [-+]?.inf / .nan. */
static int scalar_float(const char *s, size_t n, double *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (ascii_ieq(s + i, n - i, ".inf")) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (i == 0 && ascii_ieq(s, n, ".nan")) {
        *out = NAN;
        return 1;
    }
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    }
    if (!digits) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t exp_digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, exp_digits++;
        if (!exp_digits) return 0;
    }
    if (i != n) return 0;
    /* strtod in the C locale's notation: the text has only [0-9.eE+-]. */
    char small[64];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy) return 0;
    memcpy(copy, s, n);
    copy[n] = '\0';
    *out = strtod(copy, NULL);
    if (copy != small) free(copy);
    return 1;
}

static int convert_scalar(yaml_converter *c, const yaml_node_t *node, json_value *out) {
    const char *s = (const char *)node->data.scalar.value;
    size_t n = node->data.scalar.length;
    /* libyaml's loader gives every untagged scalar the !!str tag, so tags
     * cannot be told apart from defaults: typing uses the style alone. */
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        int64_t iv;
        int fits;
        double dv;
        if (n == 0 || ascii_ieq(s, n, "~") || ascii_ieq(s, n, "null")) {
            out->type = JSON_NULL;
            return 0;
        }
        if (ascii_ieq(s, n, "true") || ascii_ieq(s, n, "yes") || ascii_ieq(s, n, "on")) {
            out->type = JSON_BOOL;
            out->boolean = 1;
            return 0;
        }
        if (ascii_ieq(s, n, "false") || ascii_ieq(s, n, "no") || ascii_ieq(s, n, "off")) {
            out->type = JSON_BOOL;
            return 0;
        }
        if (scalar_integer(s, n, &iv, &fits)) {
            out->type = JSON_NUMBER;
            if (fits) {
                out->is_integer = 1;
                out->integer = iv;
                out->number = (double)iv;
                return 0;
            }
            /* too large for int64: keep the approximate value (decimal only) */
            if (scalar_float(s, n, &dv)) {
                out->number = dv;
                return 0;
            }
            out->type = JSON_NULL;
        } else if (scalar_float(s, n, &dv)) {
            out->type = JSON_NUMBER;
            out->number = dv;
            return 0;
        }
    }
    out->type = JSON_STRING;
    out->string = malloc(n + 1);
    if (!out->string) return conv_fail(c, node, "out of memory");
    memcpy(out->string, s, n);
    out->string[n] = '\0';
    out->length = n;
    return 0;
}

static int convert_node(yaml_converter *c, int id, json_value *out, int depth) {
    yaml_node_t *node = yaml_document_get_node(c->doc, id);
    if (!node) return conv_fail(c, NULL, "dangling node reference");
    if (depth > JSON_MAX_DEPTH) return conv_fail(c, node, "nesting deeper than 128 levels");
    if (++c->produced > c->budget)
        return conv_fail(c, node, "aliases expand to more than 10000 extra nodes");
    switch (node->type) {
    case YAML_SCALAR_NODE: return convert_scalar(c, node, out);
    case YAML_SEQUENCE_NODE: {
        size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        out->type = JSON_ARRAY;
        if (!n) return 0;
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) return conv_fail(c, node, "out of memory");
        for (size_t i = 0; i < n; i++) {
            out->length = i + 1;
            if (convert_node(c, node->data.sequence.items.start[i], &out->items[i], depth + 1)) return -1;
        }
        return 0;
    }
    case YAML_MAPPING_NODE: {
        size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        out->type = JSON_OBJECT;
        if (!n) return 0;
        out->items = calloc(n, sizeof *out->items);
        out->keys = calloc(n, sizeof *out->keys);
        out->key_lengths = calloc(n, sizeof *out->key_lengths);
        if (!out->items || !out->keys || !out->key_lengths) return conv_fail(c, node, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
            yaml_node_t *key = yaml_document_get_node(c->doc, pair->key);
            out->length = i + 1;
            if (!key || key->type != YAML_SCALAR_NODE)
                return conv_fail(c, key ? key : node, "mapping key is not a scalar");
            size_t kl = key->data.scalar.length;
            out->keys[i] = malloc(kl + 1);
            if (!out->keys[i]) return conv_fail(c, key, "out of memory");
            memcpy(out->keys[i], key->data.scalar.value, kl);
            out->keys[i][kl] = '\0';
            out->key_lengths[i] = kl;
            if (convert_node(c, pair->value, &out->items[i], depth + 1)) return -1;
        }
        return 0;
    }
    default: return conv_fail(c, node, "unknown YAML node type");
    }
}

static void parser_error(const yaml_parser_t *p, const char *name, char *err, size_t err_len) {
    if (!err || !err_len) return;
    size_t line = (size_t)p->problem_mark.line + 1, col = (size_t)p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        snprintf(err, err_len, "%s: byte %zu: %s", name, (size_t)p->problem_offset, problem);
        return;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(err, err_len, "%s: out of memory", name);
        return;
    }
    if (p->context)
        snprintf(err, err_len, "%s: line %zu column %zu: %s (%s at line %zu)", name, line, col, problem,
                 p->context, (size_t)p->context_mark.line + 1);
    else
        snprintf(err, err_len, "%s: line %zu column %zu: %s", name, line, col, problem);
}

json_value *yaml_parse(const char *text, size_t len, const char *name_for_errors, char *err,
                       size_t err_len) {
    const char *name = name_for_errors ? name_for_errors : "<yaml>";
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        if (err && err_len) snprintf(err, err_len, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), text ? len : 0);
    if (!yaml_parser_load(&parser, &doc)) {
        parser_error(&parser, name, err, err_len);
        yaml_parser_delete(&parser);
        return NULL;
    }
    json_value *root = calloc(1, sizeof *root);
    yaml_converter c = {.doc = &doc, .name = name, .err = err, .err_len = err_len};
    c.budget = (size_t)(doc.nodes.top - doc.nodes.start) + YAML_MAX_ALIAS_NODES;
    int rc = 0;
    if (!root) {
        rc = conv_fail(&c, NULL, "out of memory");
    } else if (yaml_document_get_root_node(&doc)) {
        rc = convert_node(&c, 1, root, 1);
    } else {
        root->type = JSON_NULL; /* empty stream */
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        json_free(root);
        return NULL;
    }
    return root;
}

json_value *yaml_parse_file(const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && err_len) snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                if (err && err_len) snprintf(err, err_len, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (!got) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        if (err && err_len) snprintf(err, err_len, "cannot read '%s'", path);
        return NULL;
    }
    json_value *v = yaml_parse(buf, len, path, err, err_len);
    free(buf);
    return v;
}
