/*
 * Small strict DOM JSON reader (RFC 8259).
 *
 * Data flow: bytes -> json_parse -> a tree of json_value nodes owned by the
 * root (free it with json_free). Strings are decoded to UTF-8 (\u escapes and
 * surrogate pairs included) and NUL-terminated; they may contain NUL bytes
 * written as \u0000, so use `length`. Object keys keep their file order and
 * duplicates are kept (json_get returns the first).
 *
 * Strict: no comments, no trailing commas, no NaN/Infinity, no leading zeros,
 * no control characters inside strings, invalid UTF-8 and lone surrogates are
 * errors, numbers that overflow a double are errors. A leading UTF-8 byte
 * order mark is skipped. Nesting depth is limited to JSON_MAX_DEPTH.
 * It does not write JSON.
 */
#ifndef CTTS_IO_JSON_H
#define CTTS_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 128

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int boolean;       /* JSON_BOOL */
    double number;     /* JSON_NUMBER */
    int64_t integer;   /* JSON_NUMBER: exact value when is_integer */
    int is_integer;    /* number written without fraction/exponent and fits int64 */
    char *string;      /* JSON_STRING: UTF-8, NUL-terminated (may contain \u0000 -> use length) */
    size_t length;     /* string byte length, or item count for arrays/objects */
    json_value *items; /* array elements / object values, `length` of them */
    char **keys;       /* object keys (NUL-terminated), `length` of them; duplicates kept in order */
    size_t *key_lengths;
};

/* Parses text[0..len). NULL on error with a message "line L col C: what" in err
 * (columns count bytes, both 1-based). */
json_value *json_parse(const char *text, size_t len, char *err, size_t err_len);
/* Frees a tree returned by json_parse / json_parse_file / yaml_parse (NULL is fine). */
void json_free(json_value *v);
/* First value under key in an object; NULL if none or obj is not an object. */
const json_value *json_get(const json_value *obj, const char *key);
/* Element i of an array; NULL if out of range or arr is not an array. */
const json_value *json_at(const json_value *arr, size_t i);
/* Reads and parses a whole file; errors are "<path>: ..." */
json_value *json_parse_file(const char *path, char *err, size_t err_len);

/* "null", "bool", "number", "string", "array", "object". */
const char *json_type_name(json_type t);
/* Frees what a node owns but not the node itself (for nodes embedded in arrays). */
void json_free_contents(json_value *v);

#endif
