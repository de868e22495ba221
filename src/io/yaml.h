/*
 * YAML reader (libyaml) producing the same json_value tree as io/json.h.
 *
 * Data flow: text -> libyaml document loader (first document only) -> tree:
 * mappings -> JSON_OBJECT (keys in file order, duplicates kept), sequences ->
 * JSON_ARRAY, scalars: quoted / block -> JSON_STRING;
 * plain scalars: null, ~ or empty -> JSON_NULL; true/false/yes/no/on/off (any
 * case) -> JSON_BOOL; decimal or 0x integers -> JSON_NUMBER with is_integer
 * (when they fit int64); decimal floats (1.5, 1e-5, .5, .inf, .nan) ->
 * JSON_NUMBER; anything else -> JSON_STRING.
 * Aliases are expanded into copies, with a budget of YAML_MAX_ALIAS_NODES
 * extra nodes (billion-laughs and self-referencing aliases are rejected).
 * Free the result with json_free. It does not support merge keys ("<<"),
 * tags (explicit tags such as !!str on plain scalars are ignored: libyaml's
 * loader makes them indistinguishable from defaults), or writing YAML.
 */
#ifndef CTTS_IO_YAML_H
#define CTTS_IO_YAML_H

#include <stddef.h>

#include "io/json.h"

#define YAML_MAX_ALIAS_NODES 10000

/* Parses text[0..len). NULL on error with "<name>: line L column C: <problem>" in err
 * (1-based). An empty document gives a JSON_NULL root. */
json_value *yaml_parse(const char *text, size_t len, const char *name_for_errors, char *err,
                       size_t err_len);
/* Reads path and parses it; errors name the path. */
json_value *yaml_parse_file(const char *path, char *err, size_t err_len);

#endif
