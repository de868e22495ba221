/*
 * Tests for src/io/yaml: the golden tiny config (values and types), scalar
 * typing rules, aliases, malformed YAML (line numbers in messages), alias
 * bombs and self-references.
 */
#include <stdint.h>

#include "harness.h"
#include "io/yaml.h"

static json_value *parse(const char *s, char *err, size_t n) {
    return yaml_parse(s, strlen(s), "test.yaml", err, n);
}

static const json_value *path_get(const json_value *v, const char *a, const char *b, const char *c) {
    v = json_get(v, a);
    if (b) v = json_get(v, b);
    if (c) v = json_get(v, c);
    return v;
}

static void test_golden_config(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/pocket-tiny/model/config.yaml", test_golden_dir());
    FILE *probe = fopen(path, "rb");
    if (!probe) SKIP("golden config missing");
    fclose(probe);
    json_value *v = yaml_parse_file(path, err, sizeof err);
    REQUIRE(v);
    REQUIRE(v->type == JSON_OBJECT);
    const json_value *x = json_get(v, "weights_path");
    REQUIRE(x && x->type == JSON_STRING);
    CHECK(strcmp(x->string, "model.safetensors") == 0);
    x = path_get(v, "flow_lm", "insert_bos_before_voice", NULL);
    REQUIRE(x);
    CHECK(x->type == JSON_BOOL && x->boolean == 1);
    x = path_get(v, "flow_lm", "transformer", "num_heads");
    REQUIRE(x);
    CHECK(x->type == JSON_NUMBER && x->is_integer && x->integer == 4);
    x = path_get(v, "flow_lm", "transformer", "max_period");
    REQUIRE(x);
    CHECK(x->is_integer && x->integer == 10000);
    x = path_get(v, "flow_lm", "lookup_table", "tokenizer_path");
    REQUIRE(x && x->type == JSON_STRING);
    CHECK(strcmp(x->string, "tokenizer.model") == 0);
    x = path_get(v, "mimi", "frame_rate", NULL);
    REQUIRE(x);
    CHECK(x->type == JSON_NUMBER && !x->is_integer && x->number == 12.5);
    x = path_get(v, "mimi", "transformer", "layer_scale");
    REQUIRE(x);
    CHECK(x->type == JSON_NUMBER && x->number == 0.01);
    x = path_get(v, "mimi", "seanet", "ratios");
    REQUIRE(x && x->type == JSON_ARRAY && x->length == 3);
    CHECK(json_at(x, 0)->integer == 6 && json_at(x, 1)->integer == 5 && json_at(x, 2)->integer == 4);
    x = path_get(v, "mimi", "seanet", "pad_mode");
    REQUIRE(x && x->type == JSON_STRING);
    CHECK(strcmp(x->string, "constant") == 0);
    x = path_get(v, "mimi", "transformer", "output_dimensions");
    REQUIRE(x && x->type == JSON_ARRAY && x->length == 1);
    CHECK_EQ_INT(json_at(x, 0)->integer, 32);
    json_free(v);
}

static void test_scalar_types(void) {
    char err[256];
    json_value *v = parse("a: null\nb: ~\nc:\nd: 'null'\ne: \"5\"\nf: 5\ng: -17\nh: 0x1F\n"
                          "i: 1e-5\nj: .5\nk: -2.5E3\nl: .inf\nm: -.Inf\nn: .nan\no: Yes\np: OFF\n"
                          "q: y\nr: 1.2.3\ns: hello world\nu: |\n  block\nv: 99999999999999999999\n"
                          "w: 1e\nx: True\n",
                          err, sizeof err);
    REQUIRE(v);
    CHECK(json_get(v, "a")->type == JSON_NULL);
    CHECK(json_get(v, "b")->type == JSON_NULL);
    CHECK(json_get(v, "c")->type == JSON_NULL);
    CHECK(json_get(v, "d")->type == JSON_STRING && strcmp(json_get(v, "d")->string, "null") == 0);
    CHECK(json_get(v, "e")->type == JSON_STRING && strcmp(json_get(v, "e")->string, "5") == 0);
    CHECK(json_get(v, "f")->type == JSON_NUMBER && json_get(v, "f")->is_integer && json_get(v, "f")->integer == 5);
    CHECK(json_get(v, "f")->number == 5.0);
    CHECK(json_get(v, "g")->integer == -17);
    CHECK(json_get(v, "h")->is_integer && json_get(v, "h")->integer == 31);
    CHECK(json_get(v, "i")->type == JSON_NUMBER && !json_get(v, "i")->is_integer && json_get(v, "i")->number == 1e-5);
    CHECK(json_get(v, "j")->number == 0.5);
    CHECK(json_get(v, "k")->number == -2500.0);
    CHECK(isinf(json_get(v, "l")->number) && json_get(v, "l")->number > 0);
    CHECK(isinf(json_get(v, "m")->number) && json_get(v, "m")->number < 0);
    CHECK(json_get(v, "n")->type == JSON_NUMBER && isnan(json_get(v, "n")->number));
    CHECK(json_get(v, "o")->type == JSON_BOOL && json_get(v, "o")->boolean == 1);
    CHECK(json_get(v, "p")->type == JSON_BOOL && json_get(v, "p")->boolean == 0);
    CHECK(json_get(v, "q")->type == JSON_STRING);
    CHECK(json_get(v, "r")->type == JSON_STRING);
    CHECK(json_get(v, "s")->type == JSON_STRING && strcmp(json_get(v, "s")->string, "hello world") == 0);
    CHECK(json_get(v, "u")->type == JSON_STRING && strcmp(json_get(v, "u")->string, "block\n") == 0);
    CHECK(json_get(v, "v")->type == JSON_NUMBER && !json_get(v, "v")->is_integer);
    CHECK_NEAR(json_get(v, "v")->number, 1e20, 1e6);
    CHECK(json_get(v, "w")->type == JSON_STRING);
    CHECK(json_get(v, "x")->type == JSON_BOOL && json_get(v, "x")->boolean == 1);
    json_free(v);
}

static void test_structure_and_aliases(void) {
    char err[256];
    json_value *v = parse("base: &b {x: 1, y: [a, b]}\ncopy: *b\nlist: [1, [2, 3], {}]\ndup: 1\ndup: 2\n", err,
                          sizeof err);
    REQUIRE(v);
    const json_value *copy = json_get(v, "copy");
    REQUIRE(copy && copy->type == JSON_OBJECT);
    CHECK_EQ_INT(json_get(copy, "x")->integer, 1);
    CHECK(strcmp(json_at(json_get(copy, "y"), 1)->string, "b") == 0);
    CHECK(json_get(copy, "y") != json_get(json_get(v, "base"), "y")); /* a copy, not shared */
    const json_value *list = json_get(v, "list");
    CHECK(list->length == 3 && json_at(list, 1)->length == 2 && json_at(list, 2)->type == JSON_OBJECT);
    CHECK_EQ_INT(v->length, 5);
    CHECK_EQ_INT(json_get(v, "dup")->integer, 1);
    json_free(v);

    /* empty input and only the first document */
    v = parse("", err, sizeof err);
    REQUIRE(v);
    CHECK(v->type == JSON_NULL);
    json_free(v);
    v = parse("--- 1\n--- 2\n", err, sizeof err);
    REQUIRE(v);
    CHECK(v->is_integer && v->integer == 1);
    json_free(v);
}

static void test_malformed(void) {
    char err[256] = "";
    json_value *v = parse("a: 1\nb: [1, 2\nc: 3\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "test.yaml: line ");
    CHECK_STR_CONTAINS(err, "column");
    v = parse("a: 1\n  b: 2\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "test.yaml: line 2 column");
    v = parse("a: 1\nb: \"unterminated\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "line 3");
    v = parse("a: *nope\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "test.yaml: line 1");
    CHECK_STR_CONTAINS(err, "undefined alias");
    v = parse("? [1, 2]\n: x\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "mapping key is not a scalar");
    v = parse("a: \"\xff\"\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "test.yaml");

    v = yaml_parse_file("/nonexistent/config.yaml", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "cannot open '/nonexistent/config.yaml'");
}

static void test_alias_bomb(void) {
    char err[256] = "";
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    json_value *v = parse(bomb, err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "more than 10000");
    json_free(v);

    /* a small expansion is fine */
    v = parse("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n", err,
              sizeof err);
    REQUIRE(v);
    CHECK_EQ_INT(json_get(v, "b")->length, 10);
    json_free(v);

    /* self-reference: expansion never ends, must be rejected */
    v = parse("a: &a [1, *a]\n", err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "test.yaml: line");
    json_free(v);
}

static void test_deep_nesting(void) {
    char err[256];
    size_t n = 5000;
    char *s = malloc(2 * n + 1);
    REQUIRE(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = 0;
    json_value *v = parse(s, err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR_CONTAINS(err, "nesting deeper");
    free(s);
}

TEST_MAIN(T(test_golden_config), T(test_scalar_types), T(test_structure_and_aliases), T(test_malformed),
          T(test_alias_bomb), T(test_deep_nesting))
