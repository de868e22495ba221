/*
 * Tests for src/io/json: a valid corpus (types, escapes, surrogates, numbers,
 * duplicate keys) and an invalid corpus whose error messages and positions
 * are checked. Also reads a golden JSON file if one is present.
 */
#include <stdint.h>

#include "harness.h"
#include "io/json.h"

static json_value *parse_str(const char *s, char *err, size_t err_len) {
    return json_parse(s, strlen(s), err, err_len);
}

/* Parses s, expects failure with a message containing want. */
static void expect_error(const char *s, size_t len, const char *want) {
    char err[256] = "";
    json_value *v = json_parse(s, len, err, sizeof err);
    if (v) {
        TEST_FAIL_AT("parse of '%.40s' succeeded, expected error '%s'", s, want);
        json_free(v);
        return;
    }
    if (!strstr(err, want)) TEST_FAIL_AT("error '%s' does not contain '%s'", err, want);
    if (strncmp(err, "line ", 5) != 0) TEST_FAIL_AT("error '%s' has no line", err);
}

static void test_scalars(void) {
    char err[256];
    json_value *v = parse_str(" true ", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_BOOL && v->boolean == 1);
    json_free(v);
    v = parse_str("false", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_BOOL && v->boolean == 0);
    json_free(v);
    v = parse_str("null", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_NULL);
    json_free(v);
    v = parse_str("\"hi\"", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_STRING && v->length == 2 && strcmp(v->string, "hi") == 0);
    json_free(v);
}

static void test_numbers(void) {
    char err[256];
    json_value *v = parse_str("[0, -0, 42, -17, 1.5, -2.5e3, 1E2, 9223372036854775807, "
                              "-9223372036854775808, 9223372036854775808, "
                              "123456789012345678901234567890, 1e-400, 3.0]",
                              err, sizeof err);
    REQUIRE(v);
    REQUIRE(v->type == JSON_ARRAY && v->length == 13);
    CHECK(json_at(v, 0)->is_integer && json_at(v, 0)->integer == 0);
    CHECK(json_at(v, 1)->is_integer && json_at(v, 1)->integer == 0);
    CHECK(json_at(v, 2)->is_integer && json_at(v, 2)->integer == 42);
    CHECK(json_at(v, 3)->is_integer && json_at(v, 3)->integer == -17);
    CHECK(!json_at(v, 4)->is_integer && json_at(v, 4)->number == 1.5);
    CHECK(!json_at(v, 5)->is_integer && json_at(v, 5)->number == -2500.0);
    CHECK(!json_at(v, 6)->is_integer && json_at(v, 6)->number == 100.0);
    CHECK(json_at(v, 7)->is_integer && json_at(v, 7)->integer == INT64_MAX);
    CHECK(json_at(v, 8)->is_integer && json_at(v, 8)->integer == INT64_MIN);
    CHECK(!json_at(v, 9)->is_integer);
    CHECK_NEAR(json_at(v, 9)->number, 9223372036854775808.0, 1.0);
    CHECK(!json_at(v, 10)->is_integer);
    CHECK_NEAR(json_at(v, 10)->number / 1.2345678901234568e29, 1.0, 1e-12);
    CHECK(json_at(v, 11)->number == 0.0); /* underflow is fine */
    CHECK(!json_at(v, 12)->is_integer && json_at(v, 12)->number == 3.0);
    CHECK(json_at(v, 13) == NULL);
    json_free(v);
}

static void test_strings_and_escapes(void) {
    char err[256];
    const char *s = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"";
    json_value *v = parse_str(s, err, sizeof err);
    REQUIRE(v);
    REQUIRE(v->type == JSON_STRING);
    const char *want = "a\"b\\c/d\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK_EQ_INT(v->length, strlen(want));
    CHECK(memcmp(v->string, want, strlen(want) + 1) == 0);
    json_free(v);

    /* \u0000 keeps the length */
    v = parse_str("\"x\\u0000y\"", err, sizeof err);
    REQUIRE(v);
    CHECK_EQ_INT(v->length, 3);
    CHECK(v->string[0] == 'x' && v->string[1] == 0 && v->string[2] == 'y' && v->string[3] == 0);
    json_free(v);

    /* raw UTF-8 passes through */
    v = parse_str("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"", err, sizeof err);
    REQUIRE(v);
    CHECK(strcmp(v->string, "caf\xC3\xA9 \xF0\x9F\x98\x80") == 0);
    json_free(v);
}

static void test_objects(void) {
    char err[256];
    json_value *v =
        parse_str("{\"a\": 1, \"b\": {\"c\": [true, null]}, \"a\": 2, \"\": \"empty\"}", err,
                  sizeof err);
    REQUIRE(v);
    REQUIRE(v->type == JSON_OBJECT);
    CHECK_EQ_INT(v->length, 4);
    CHECK(strcmp(v->keys[0], "a") == 0 && strcmp(v->keys[2], "a") == 0);
    CHECK_EQ_INT(json_get(v, "a")->integer, 1); /* first of the duplicates */
    CHECK_EQ_INT(v->items[2].integer, 2);
    const json_value *c = json_get(json_get(v, "b"), "c");
    REQUIRE(c && c->type == JSON_ARRAY && c->length == 2);
    CHECK(json_at(c, 0)->type == JSON_BOOL && json_at(c, 1)->type == JSON_NULL);
    CHECK(json_get(v, "zz") == NULL);
    CHECK(json_get(c, "a") == NULL);
    CHECK(json_at(v, 0) == NULL);
    CHECK(strcmp(json_get(v, "")->string, "empty") == 0);
    json_free(v);

    v = parse_str("{}", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_OBJECT && v->length == 0);
    json_free(v);
    v = parse_str("[]", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_ARRAY && v->length == 0);
    json_free(v);
}

static void test_depth_limit(void) {
    char err[256];
    /* 128 levels is fine, 129 is not */
    char buf[400];
    memset(buf, '[', 128);
    memset(buf + 128, ']', 128);
    json_value *v = json_parse(buf, 256, err, sizeof err);
    CHECK(v != NULL);
    json_free(v);
    memset(buf, '[', 129);
    memset(buf + 129, ']', 129);
    expect_error(buf, 258, "nesting deeper than 128");

    size_t n = 10000;
    char *deep = malloc(n);
    REQUIRE(deep);
    memset(deep, '[', n);
    expect_error(deep, n, "nesting deeper than 128");
    for (size_t i = 0; i < n; i += 2) memcpy(deep + i, "{\"", 2);
    expect_error(deep, n, "line 1");
    free(deep);
}

static void test_invalid_corpus(void) {
    expect_error("", 0, "empty input");
    expect_error("   \n ", 5, "line 2 col 2: empty input");
    expect_error("[1, 2,]", 7, "trailing comma in array");
    expect_error("{\"a\":1,}", 8, "trailing comma in object");
    expect_error("\"\\x\"", 4, "bad escape \\'x'");
    expect_error("\"\\u12G4\"", 8, "bad \\u escape");
    expect_error("\"\\ud83d\"", 8, "lone high surrogate");
    expect_error("\"\\ud83d\\u0041\"", 14, "lone high surrogate");
    expect_error("\"\\ude00\"", 8, "lone low surrogate");
    expect_error("\"abc", 4, "line 1 col 1: unterminated string");
    expect_error("\"ab\\", 4, "unterminated string");
    expect_error("\"a\nb\"", 5, "control character");
    expect_error("\"a\0b\"", 5, "control character");
    expect_error("[1]\0", 4, "byte 0x00 after the top-level value");
    expect_error("\0", 1, "unexpected byte 0x00");
    expect_error("\"\xC3\x28\"", 4, "invalid UTF-8");
    expect_error("\"\xC0\xAF\"", 4, "invalid UTF-8");         /* overlong */
    expect_error("\"\xED\xA0\x80\"", 5, "invalid UTF-8");     /* encoded surrogate */
    expect_error("\"\xF4\x90\x80\x80\"", 6, "invalid UTF-8"); /* > U+10FFFF */
    expect_error("\"\xE2\x82\"", 4, "invalid UTF-8");         /* truncated */
    expect_error("01", 2, "leading zero");
    expect_error("1.", 2, "no digits after '.'");
    expect_error("1e", 2, "no exponent digits");
    expect_error("-", 1, "invalid number");
    expect_error("+1", 2, "unexpected '+'");
    expect_error(".5", 2, "unexpected '.'");
    expect_error("1e999", 5, "number out of range");
    expect_error("-1e400", 6, "number out of range");
    expect_error("NaN", 3, "unexpected 'N'");
    expect_error("tru", 3, "unexpected 't'");
    expect_error("nul", 3, "unexpected 'n'");
    expect_error("[1 2]", 5, "expected ',' or ']'");
    expect_error("{\"a\" 1}", 7, "expected ':'");
    expect_error("{a:1}", 5, "expected string key");
    expect_error("{\"a\":1", 6, "expected ',' or '}' in object, got end of input");
    expect_error("[", 1, "unexpected end of input");
    expect_error("1 2", 3, "line 1 col 3: unexpected '2' after the top-level value");
    expect_error("// c\n1", 6, "unexpected '/'");
    expect_error("{\n  \"a\": [1,\n   2,,\n", 19, "line 3 col 6");
}

static void test_error_buffer_small(void) {
    char err[8];
    json_value *v = parse_str("[1,]", err, sizeof err);
    CHECK(v == NULL);
    CHECK(strlen(err) == 7); /* truncated, NUL-terminated */
    CHECK(parse_str("[1,]", NULL, 0) == NULL);
}

static void test_parse_file(void) {
    char err[512];
    json_value *v = json_parse_file("/nonexistent/dir/x.json", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "/nonexistent/dir/x.json");

    char path[] = "/tmp/ctts_json_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f);
    fputs("\xEF\xBB\xBF{\"vocab\": [\"a\", \"b\"],\n \"bad\": tru}", f);
    fclose(f);
    v = json_parse_file(path, err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, path);
    CHECK_STR_CONTAINS(err, "line 2 col 9");

    f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"vocab\": [\"a\", \"b\"]}", f);
    fclose(f);
    v = json_parse_file(path, err, sizeof err);
    REQUIRE(v);
    CHECK_EQ_INT(json_get(v, "vocab")->length, 2);
    json_free(v);
    remove(path);
}

TEST_MAIN(T(test_scalars), T(test_numbers), T(test_strings_and_escapes), T(test_objects),
          T(test_depth_limit), T(test_invalid_corpus), T(test_error_buffer_small),
          T(test_parse_file))
