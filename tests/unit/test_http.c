/*
 * Tests for src/io/http: valid requests (fields, header lookup, OWS, bare LF,
 * keep-alive, Expect), every error class with its status, INCOMPLETE for
 * every proper prefix, the max_head and header-count limits, and a fuzz loop.
 * Every parse reads from an exactly-sized malloc'd copy so that ASan catches
 * a read past len.
 */
#include <stdint.h>

#include "harness.h"
#include "io/http.h"

#define BIG_HEAD 65536

typedef struct {
    char *buf; /* exactly len bytes (at least 1 allocated) */
    size_t len;
    http_request r;
    http_parse_result rc;
    int status;
    char err[160];
} parsed;

static void parse_n(parsed *p, const char *s, size_t len, size_t max_head) {
    p->buf = malloc(len ? len : 1);
    if (len) memcpy(p->buf, s, len);
    p->len = len;
    p->status = -1;
    strcpy(p->err, "unset");
    p->rc = http_parse_request(p->buf, len, max_head, &p->r, &p->status, p->err, sizeof p->err);
}

static void parse_s(parsed *p, const char *s) { parse_n(p, s, strlen(s), BIG_HEAD); }

static void done(parsed *p) {
    free(p->buf);
    p->buf = NULL;
}

static int span_eq(const char *s, size_t n, const char *want) { return strlen(want) == n && memcmp(s, want, n) == 0; }

/* Value of header `name` as a NUL-terminated copy in out ("(absent)" if none). */
static const char *header_value(const http_request *r, const char *name, char *out, size_t n) {
    const http_header *h = http_find_header(r, name);
    if (!h) return "(absent)";
    snprintf(out, n, "%.*s", (int)h->value_len, h->value);
    return out;
}

/* Parses s (len bytes), expects ERROR with this status and a message containing want. */
static void expect_error_n(const char *s, size_t len, int status, const char *want) {
    parsed p;
    parse_n(&p, s, len, BIG_HEAD);
    if (p.rc != HTTP_PARSE_ERROR)
        TEST_FAIL_AT("'%.60s': result %d, expected ERROR %d (%s)", s, p.rc, status, want);
    else if (p.status != status)
        TEST_FAIL_AT("'%.60s': status %d (%s), expected %d", s, p.status, p.err, status);
    else if (!strstr(p.err, want))
        TEST_FAIL_AT("'%.60s': error '%s' does not contain '%s'", s, p.err, want);
    else if (strchr(p.err, '\n'))
        TEST_FAIL_AT("'%.60s': error '%s' is not one line", s, p.err);
    done(&p);
}

static void expect_error(const char *s, int status, const char *want) { expect_error_n(s, strlen(s), status, want); }

static void test_get(void) {
    parsed p;
    const char *s = "GET /v1/voices?lang=en&x=1 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n";
    parse_s(&p, s);
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.status, 0);
    CHECK(p.err[0] == 0);
    CHECK(span_eq(p.r.method, p.r.method_len, "GET"));
    CHECK(span_eq(p.r.target, p.r.target_len, "/v1/voices?lang=en&x=1"));
    CHECK_EQ_INT(p.r.path_len, 10);
    CHECK(p.r.method == p.buf && p.r.target == p.buf + 4);
    CHECK_EQ_INT(p.r.minor, 1);
    CHECK_EQ_INT(p.r.n_headers, 2);
    CHECK(span_eq(p.r.headers[0].name, p.r.headers[0].name_len, "Host"));
    CHECK(span_eq(p.r.headers[0].value, p.r.headers[0].value_len, "localhost:8080"));
    CHECK(span_eq(p.r.headers[1].name, p.r.headers[1].name_len, "Accept"));
    CHECK(span_eq(p.r.headers[1].value, p.r.headers[1].value_len, "*/*"));
    CHECK_EQ_INT(p.r.head_len, strlen(s));
    CHECK_EQ_INT(p.r.content_length, -1);
    CHECK_EQ_INT(p.r.keep_alive, 1);
    CHECK_EQ_INT(p.r.expect_continue, 0);
    done(&p);

    /* No '?': the path is the whole target; no headers at all is fine. */
    parse_s(&p, "DELETE /jobs/7 HTTP/1.0\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK(span_eq(p.r.method, p.r.method_len, "DELETE"));
    CHECK_EQ_INT(p.r.path_len, 7);
    CHECK_EQ_INT(p.r.target_len, 7);
    CHECK_EQ_INT(p.r.minor, 0);
    CHECK_EQ_INT(p.r.n_headers, 0);
    CHECK_EQ_INT(p.r.head_len, 27);
    done(&p);

    /* Method: any tchar, exactly 32 bytes still fine. */
    parse_s(&p, "M-SEARCH.x_y~!#$%&'*+^`|01234567 /? HTTP/1.1\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.method_len, 32);
    CHECK_EQ_INT(p.r.path_len, 1);
    CHECK_EQ_INT(p.r.target_len, 2);
    done(&p);
}

static void test_post_body(void) {
    parsed p;
    const char *head = "POST /v1/tts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n";
    char s[256];
    snprintf(s, sizeof s, "%s{\"text\":\"hi\"}", head);
    parse_s(&p, s);
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK(span_eq(p.r.method, p.r.method_len, "POST"));
    CHECK_EQ_INT(p.r.head_len, strlen(head));
    CHECK_EQ_INT(p.r.content_length, 13);
    CHECK_EQ_INT(p.r.head_len + (size_t)p.r.content_length, strlen(s));
    CHECK(memcmp(p.buf + p.r.head_len, "{\"text\":\"hi\"}", 13) == 0);
    done(&p);

    /* Pipelined next request after the head: head_len stops at the first blank line. */
    parse_s(&p, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.head_len, 19);
    done(&p);

    /* Content-Length 0, and the largest accepted value (18 digits), OWS trimmed. */
    parse_s(&p, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.content_length, 0);
    done(&p);
    parse_s(&p, "POST / HTTP/1.1\r\ncontent-length:\t 999999999999999999 \t\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK(p.r.content_length == INT64_C(999999999999999999));
    done(&p);
    parse_s(&p, "POST / HTTP/1.1\r\nContent-Length: 000000000000000042\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.content_length, 42);
    done(&p);
    /* Repeated with the same value is accepted. */
    parse_s(&p, "POST / HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\nCONTENT-LENGTH: 0005\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.content_length, 5);
    done(&p);
}

static void test_header_lookup(void) {
    parsed p;
    char v[64];
    parse_s(&p, "GET / HTTP/1.1\r\nContent-Type: text/plain\r\nX-Dup: first\r\nx-dup: second\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK(strcmp(header_value(&p.r, "content-type", v, sizeof v), "text/plain") == 0);
    CHECK(strcmp(header_value(&p.r, "CONTENT-TYPE", v, sizeof v), "text/plain") == 0);
    CHECK(strcmp(header_value(&p.r, "Content-Type", v, sizeof v), "text/plain") == 0);
    CHECK(strcmp(header_value(&p.r, "x-dup", v, sizeof v), "first") == 0);
    CHECK(http_find_header(&p.r, "x-dup") == &p.r.headers[1]);
    CHECK(http_find_header(&p.r, "Content-Typ") == NULL);
    CHECK(http_find_header(&p.r, "Content-Type2") == NULL);
    CHECK(http_find_header(&p.r, "") == NULL);
    done(&p);
}

static void test_ows_trim(void) {
    parsed p;
    char v[64];
    parse_s(&p, "GET / HTTP/1.1\r\nA: \t value with  inner \t space \t \r\nB:\r\nC:v\r\nD:   \r\n"
                "E: caf\xC3\xA9 \x80\xFF\r\n\r\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    REQUIRE(p.r.n_headers == 5);
    CHECK(strcmp(header_value(&p.r, "a", v, sizeof v), "value with  inner \t space") == 0);
    CHECK_EQ_INT(http_find_header(&p.r, "b")->value_len, 0);
    CHECK(strcmp(header_value(&p.r, "c", v, sizeof v), "v") == 0);
    CHECK_EQ_INT(http_find_header(&p.r, "d")->value_len, 0);
    CHECK(strcmp(header_value(&p.r, "e", v, sizeof v), "caf\xC3\xA9 \x80\xFF") == 0);
    /* An empty value still points into the buffer. */
    const http_header *b = http_find_header(&p.r, "b");
    CHECK(b->value >= p.buf && b->value <= p.buf + p.len);
    done(&p);
}

static void test_bare_lf(void) {
    parsed p;
    const char *s = "POST /x HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc";
    parse_s(&p, s);
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.head_len, strlen(s) - 3);
    CHECK_EQ_INT(p.r.n_headers, 2);
    CHECK(span_eq(p.r.headers[0].value, p.r.headers[0].value_len, "a"));
    CHECK_EQ_INT(p.r.content_length, 3);
    done(&p);
    /* Mixed line ends. */
    parse_s(&p, "GET /x HTTP/1.1\r\nHost: a\nX: b\r\n\n");
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.n_headers, 2);
    CHECK(span_eq(p.r.headers[1].value, p.r.headers[1].value_len, "b"));
    CHECK_EQ_INT(p.r.head_len, 32);
    done(&p);
}

static void test_leading_empty_lines(void) {
    parsed p;
    /* 8 empty lines (mixed CRLF / LF) are skipped and counted in head_len. */
    const char *s = "\r\n\n\r\n\n\r\n\n\r\n\nGET / HTTP/1.1\r\n\r\n";
    parse_s(&p, s);
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.head_len, strlen(s));
    CHECK(p.r.method == p.buf + 12);
    done(&p);
    expect_error("\r\n\n\r\n\n\r\n\n\r\n\n\nGET / HTTP/1.1\r\n\r\n", 400, "more than 8 empty lines");
    expect_error("\n\n\n\n\n\n\n\n\n", 400, "more than 8 empty lines");
    /* A CR not followed by LF is no empty line. */
    expect_error("\r\rGET / HTTP/1.1\r\n\r\n", 400, "request line");
}

static void test_request_line_errors(void) {
    expect_error("G(T / HTTP/1.1\r\n\r\n", 400, "'(' in method");
    expect_error("GET\t/ HTTP/1.1\r\n\r\n", 400, "byte 0x09 in method");
    expect_error(" GET / HTTP/1.1\r\n\r\n", 400, "not a method");
    expect_error("M-SEARCH.x_y~!#$%&'*+^`|012345678 / HTTP/1.1\r\n\r\n", 400, "method longer than 32");
    expect_error("GET\r\n\r\n", 400, "no request target");
    expect_error("GET /\r\n\r\n", 400, "no HTTP version");
    expect_error("GET  / HTTP/1.1\r\n\r\n", 400, "empty target");
    expect_error("GET http://x/ HTTP/1.1\r\n\r\n", 400, "does not start with '/'");
    expect_error("OPTIONS * HTTP/1.1\r\n\r\n", 400, "asterisk-form");
    expect_error("OPTIONS *x HTTP/1.1\r\n\r\n", 400, "does not start with '/'");
    expect_error("GET /a\x01 HTTP/1.1\r\n\r\n", 400, "byte 0x01 in target");
    expect_error("GET /a\x7F HTTP/1.1\r\n\r\n", 400, "byte 0x7F in target");
    expect_error("GET /a\rb HTTP/1.1\r\n\r\n", 400, "byte 0x0D in target");
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    expect_error_n(nul_target, sizeof nul_target - 1, 400, "byte 0x00 in target");
    expect_error("GET / HTTP/1.1 \r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1.1\r\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / http/1.1\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1.10\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1.x\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1.1 extra\r\n\r\n", 400, "malformed HTTP version");
    expect_error("GET / HTTP/1.2\r\n\r\n", 505, "HTTP/1.2 not supported");
    expect_error("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 not supported");
    expect_error("GET / HTTP/0.9\r\n\r\n", 505, "HTTP/0.9 not supported");

    /* Bytes >= 0x80 are no control bytes: accepted in the target. */
    parsed p;
    parse_s(&p, "GET /caf\xC3\xA9 HTTP/1.1\r\n\r\n");
    CHECK(p.rc == HTTP_PARSE_OK);
    done(&p);

    /* Target of exactly 8192 bytes is fine, 8193 is not. */
    static char s[8300];
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0, tlen = 8192 + (size_t)extra;
        memcpy(s, "GET ", 4);
        n = 4;
        s[n++] = '/';
        memset(s + n, 'a', tlen - 1);
        n += tlen - 1;
        memcpy(s + n, " HTTP/1.1\r\n\r\n", 13);
        n += 13;
        parse_n(&p, s, n, BIG_HEAD);
        if (extra == 0) {
            CHECK(p.rc == HTTP_PARSE_OK);
            CHECK_EQ_INT(p.r.target_len, 8192);
        } else {
            CHECK(p.rc == HTTP_PARSE_ERROR);
            CHECK_EQ_INT(p.status, 400);
            CHECK_STR_CONTAINS(p.err, "target longer than 8192");
        }
        done(&p);
    }
}

static void test_header_errors(void) {
    expect_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "header line 1: space before colon");
    expect_error("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nHost\t: a\r\n\r\n", 400, "header line 3: space before colon");
    expect_error("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400, "header line 2: obsolete line folding");
    expect_error("GET / HTTP/1.1\r\nA: 1\r\n\tfolded\r\n\r\n", 400, "obsolete line folding");
    expect_error("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "header line 1: no colon");
    expect_error("GET / HTTP/1.1\r\n: v\r\n\r\n", 400, "empty header name");
    expect_error("GET / HTTP/1.1\r\nX(y): v\r\n\r\n", 400, "'(' in header name");
    expect_error("GET / HTTP/1.1\r\nX\x80: v\r\n\r\n", 400, "byte 0x80 in header name");
    static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    expect_error_n(nul_value, sizeof nul_value - 1, 400, "control byte 0x00 in value");
    expect_error("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "control byte 0x0D in value");
    expect_error("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", 400, "control byte 0x0D in value");
    expect_error("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400, "control byte 0x01 in value");
    expect_error("GET / HTTP/1.1\r\nX: a\x7F\r\n\r\n", 400, "control byte 0x7F in value");
    expect_error("GET / HTTP/1.1\r\nX: a\x1B[0m\r\n\r\n", 400, "control byte 0x1B in value");
    /* A CR alone where the blank line should be. */
    expect_error("GET / HTTP/1.1\r\nX: a\r\n\rY\r\n\r\n", 400, "header line 2");
}

static void test_content_length_errors(void) {
    static const char *bad[] = {"+5", "-1", "5 5", "", "0x10", "5,5", "5, 5", "1e3", "\xEF\xBC\x95",
                                "1234567890123456789", "9999999999999999999", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char s[128];
        snprintf(s, sizeof s, "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", bad[i]);
        expect_error(s, 400, "Content-Length must be 1 to 18 digits");
    }
    expect_error("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
                 "header line 2: conflicting Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 00\r\nContent-Length: 1\r\n\r\n", 400,
                 "header line 3: conflicting Content-Length");
}

static void test_transfer_encoding(void) {
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Transfer-Encoding not supported");
    expect_error("POST / HTTP/1.0\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 501, "Transfer-Encoding");
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
                 "both Content-Length and Transfer-Encoding");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                 "both Content-Length and Transfer-Encoding");
}

/* keep_alive of the request made of this version and header block. */
static int keep_alive_of(const char *version, const char *headers) {
    char s[512];
    snprintf(s, sizeof s, "GET / %s\r\n%s\r\n", version, headers);
    parsed p;
    parse_s(&p, s);
    int k = p.rc == HTTP_PARSE_OK ? p.r.keep_alive : -1;
    done(&p);
    return k;
}

static void test_keep_alive(void) {
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", ""), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: close\r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "connection: CLOSE\r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: Upgrade,  Close \r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: keep-alive\r\nConnection: x, close\r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: closed\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: clo se\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: keep-alive\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection:\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "Connection: ,,\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.1", "X-Connection: close\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", ""), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", "Connection: keep-alive\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", "Connection: Upgrade, KEEP-ALIVE\r\n"), 1);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", "Connection: keep-alive, close\r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", "Connection: keepalive\r\n"), 0);
    CHECK_EQ_INT(keep_alive_of("HTTP/1.0", "Connection: close\r\n"), 0);
}

static int expect_continue_of(const char *headers) {
    char s[512];
    snprintf(s, sizeof s, "POST / HTTP/1.1\r\nContent-Length: 4\r\n%s\r\n", headers);
    parsed p;
    parse_s(&p, s);
    int e = p.rc == HTTP_PARSE_OK ? p.r.expect_continue : -1;
    done(&p);
    return e;
}

static void test_expect_continue(void) {
    CHECK_EQ_INT(expect_continue_of(""), 0);
    CHECK_EQ_INT(expect_continue_of("Expect: 100-continue\r\n"), 1);
    CHECK_EQ_INT(expect_continue_of("expect:  100-Continue \t\r\n"), 1);
    CHECK_EQ_INT(expect_continue_of("EXPECT: 100-CONTINUE\r\n"), 1);
    CHECK_EQ_INT(expect_continue_of("Expect: 100-continue-x\r\n"), 0);
    CHECK_EQ_INT(expect_continue_of("Expect: 100\r\n"), 0);
    CHECK_EQ_INT(expect_continue_of("Expect:\r\n"), 0);
    CHECK_EQ_INT(expect_continue_of("X-Expect: 100-continue\r\n"), 0);
}

static const char *valid_requests[] = {
    "GET /v1/voices?lang=en HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    "POST /v1/tts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
    "Expect: 100-continue\r\nConnection: keep-alive, Upgrade\r\n\r\n{\"text\":\"hi\"}",
    "\r\n\nPOST /x HTTP/1.0\nContent-Length: 2\nX-Empty:\nX-Ows: \t v \t\n\nab",
    "GET / HTTP/1.1\r\n\r\n",
    "PUT /a%20b?q=\xC3\xA9 HTTP/1.1\r\nX: \x80\xFF\r\nY:z\r\n\n",
};

/* Every proper prefix of the head is INCOMPLETE, the full head is OK with the
 * same head_len, and more bytes (the body) change nothing. */
static void test_incomplete_prefixes(void) {
    for (size_t k = 0; k < sizeof valid_requests / sizeof valid_requests[0]; k++) {
        const char *s = valid_requests[k];
        size_t total = strlen(s);
        parsed p;
        parse_s(&p, s);
        REQUIRE(p.rc == HTTP_PARSE_OK);
        size_t head_len = p.r.head_len;
        done(&p);
        REQUIRE(head_len > 0 && head_len <= total);
        for (size_t n = 0; n < head_len; n++) {
            parse_n(&p, s, n, BIG_HEAD);
            if (p.rc != HTTP_PARSE_INCOMPLETE)
                TEST_FAIL_AT("request %zu prefix %zu: result %d (%s), expected INCOMPLETE", k, n, p.rc, p.err);
            else if (p.status != 0 || p.err[0])
                TEST_FAIL_AT("request %zu prefix %zu: status %d err '%s' on INCOMPLETE", k, n, p.status, p.err);
            done(&p);
        }
        for (size_t n = head_len; n <= total; n++) {
            parse_n(&p, s, n, BIG_HEAD);
            if (p.rc != HTTP_PARSE_OK || p.r.head_len != head_len)
                TEST_FAIL_AT("request %zu length %zu: result %d head_len %zu", k, n, p.rc, p.r.head_len);
            done(&p);
        }
    }
}

/* Garbage is refused before the head is complete (no slowloris of junk). */
static void test_early_error(void) {
    static const struct {
        const char *s;
        int status;
    } cases[] = {
        {"GE\x01", 400},
        {"G(", 400},
        {" ", 400},
        {"\x16\x03\x01\x02", 400}, /* the start of a TLS ClientHello */
        {"GET /a\x05", 400},
        {"GET x", 400},
        {"GET  ", 400},
        {"OPTIONS * ", 400},
        {"GET / HTTX", 400},
        {"GET / HTTP/1.1 ", 400},
        {"GET / HTTP/2.0", 505},
        {"GET / HTTP/1.1\r\nHost : ", 400},
        {"GET / HTTP/1.1\r\n folded", 400},
        {"GET / HTTP/1.1\r\nX: a\x02", 400},
        {"GET / HTTP/1.1\r\nX(", 400},
        {"\n\n\n\n\n\n\n\n\n", 400},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 400}, /* 33-byte method */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parsed p;
        parse_n(&p, cases[i].s, strlen(cases[i].s), BIG_HEAD);
        if (p.rc != HTTP_PARSE_ERROR || p.status != cases[i].status)
            TEST_FAIL_AT("case %zu '%s': result %d status %d, expected ERROR %d", i, cases[i].s, p.rc, p.status,
                         cases[i].status);
        done(&p);
    }
}

static void test_max_head(void) {
    const char *s = "GET /abc HTTP/1.1\r\nHost: example\r\nX-Pad: 0123456789\r\n\r\nBODY";
    size_t head = strlen(s) - 4;
    parsed p;
    parse_n(&p, s, strlen(s), head);
    CHECK(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.head_len, head);
    done(&p);
    parse_n(&p, s, head, head);
    CHECK(p.rc == HTTP_PARSE_OK);
    done(&p);
    parse_n(&p, s, strlen(s), head - 1);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    CHECK_STR_CONTAINS(p.err, "request head longer than");
    done(&p);
    /* The head less its last byte, len == max_head: 431, not INCOMPLETE. */
    parse_n(&p, s, head - 1, head - 1);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
    /* Incomplete: INCOMPLETE below max_head, 431 once len >= max_head. */
    parse_n(&p, s, 20, 21);
    CHECK(p.rc == HTTP_PARSE_INCOMPLETE);
    done(&p);
    parse_n(&p, s, 21, 21);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
    parse_n(&p, s, 30, 21);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
    parse_n(&p, s, 0, 0);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
    /* Leading empty lines count against max_head too. */
    parse_n(&p, "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22, 21);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
    parse_n(&p, "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22, 22);
    CHECK(p.rc == HTTP_PARSE_OK);
    done(&p);
}

/* A request with n headers "H<i>: v<i>". */
static size_t build_headers(char *s, size_t cap, int n) {
    size_t len = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < n; i++) len += (size_t)snprintf(s + len, cap - len, "H%d: v%d\r\n", i, i);
    len += (size_t)snprintf(s + len, cap - len, "\r\n");
    return len;
}

static void test_header_count(void) {
    static char s[4096];
    parsed p;
    size_t len = build_headers(s, sizeof s, HTTP_MAX_HEADERS);
    parse_n(&p, s, len, BIG_HEAD);
    REQUIRE(p.rc == HTTP_PARSE_OK);
    CHECK_EQ_INT(p.r.n_headers, 64);
    CHECK(span_eq(p.r.headers[63].name, p.r.headers[63].name_len, "H63"));
    CHECK(span_eq(p.r.headers[63].value, p.r.headers[63].value_len, "v63"));
    done(&p);
    len = build_headers(s, sizeof s, HTTP_MAX_HEADERS + 1);
    parse_n(&p, s, len, BIG_HEAD);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    CHECK_STR_CONTAINS(p.err, "more than 64 header lines");
    done(&p);
    /* Refused as soon as the 65th line starts. */
    len = build_headers(s, sizeof s, HTTP_MAX_HEADERS);
    parse_n(&p, s, len - 1, BIG_HEAD); /* ends in "\r": may still be the blank line */
    CHECK(p.rc == HTTP_PARSE_INCOMPLETE);
    done(&p);
    memcpy(s + len - 2, "H", 1);
    parse_n(&p, s, len - 1, BIG_HEAD);
    CHECK(p.rc == HTTP_PARSE_ERROR);
    CHECK_EQ_INT(p.status, 431);
    done(&p);
}

static void test_token_eq(void) {
    CHECK(http_token_eq("close", 5, "close"));
    CHECK(http_token_eq("CLoSe", 5, "close"));
    CHECK(http_token_eq("close", 5, "CLOSE"));
    CHECK(http_token_eq("closed", 5, "close"));  /* only the first len bytes count */
    CHECK(!http_token_eq("close", 4, "close"));  /* lengths must match */
    CHECK(!http_token_eq("close", 5, "clos"));
    CHECK(!http_token_eq("close", 5, "closer"));
    CHECK(!http_token_eq("clase", 5, "close"));
    CHECK(http_token_eq("", 0, ""));
    CHECK(http_token_eq(NULL, 0, ""));
    CHECK(!http_token_eq("", 0, "a"));
    CHECK(!http_token_eq("[", 1, "{")); /* 0x5B vs 0x7B: only letters fold */
    CHECK(!http_token_eq("\xC9", 1, "\xE9"));
}

static void test_reason(void) {
    static const struct {
        int code;
        const char *reason;
    } want[] = {
        {100, "Continue"},
        {200, "OK"},
        {204, "No Content"},
        {400, "Bad Request"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strcmp(http_reason(want[i].code), want[i].reason) != 0)
            TEST_FAIL_AT("http_reason(%d) = '%s', expected '%s'", want[i].code, http_reason(want[i].code),
                         want[i].reason);
    CHECK(strcmp(http_reason(0), "") == 0);
    CHECK(strcmp(http_reason(299), "") == 0);
    CHECK(strcmp(http_reason(-1), "") == 0);
}

static uint32_t lcg_next(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static int within(const char *p, size_t n, const char *buf, size_t len) {
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

/* Random mutations of valid requests: any result is one of the three, with
 * consistent fields; an OK head's proper prefix is INCOMPLETE. */
static void test_fuzz(void) {
    static const char specials[] = {'\r', '\n', '\0', ':', ' ', '\t', '?', ',', 0x7F, (char)0xFF};
    uint32_t seed = 12345;
    int counts[3] = {0, 0, 0}, by_status[4] = {0, 0, 0, 0};
    char work[1024];
    for (int iter = 0; iter < 20000; iter++) {
        const char *base = valid_requests[lcg_next(&seed) % (sizeof valid_requests / sizeof valid_requests[0])];
        size_t len = strlen(base);
        memcpy(work, base, len);
        int n_mut = 1 + (int)(lcg_next(&seed) % 4);
        for (int m = 0; m < n_mut && len > 0; m++) {
            size_t at = lcg_next(&seed) % len;
            char special = specials[lcg_next(&seed) % sizeof specials];
            switch (lcg_next(&seed) % 5) {
            case 0: work[at] = (char)(work[at] ^ (1u << (lcg_next(&seed) % 8))); break;
            case 1: work[at] = special; break;
            case 2:
                if (len < sizeof work) {
                    memmove(work + at + 1, work + at, len - at);
                    work[at] = special;
                    len++;
                }
                break;
            case 3:
                memmove(work + at, work + at + 1, len - at - 1);
                len--;
                break;
            default: len = at; break;
            }
        }
        size_t max_heads[3] = {BIG_HEAD, len, len / 2 + 1};
        size_t max_head = max_heads[lcg_next(&seed) % 3];
        parsed p;
        parse_n(&p, work, len, max_head);
        if ((int)p.rc < 0 || (int)p.rc > 2) {
            TEST_FAIL_AT("iter %d: result %d", iter, p.rc);
            done(&p);
            return;
        }
        counts[p.rc]++;
        if (p.rc == HTTP_PARSE_OK) {
            const http_request *r = &p.r;
            int ok = r->head_len > 0 && r->head_len <= len && r->head_len <= max_head &&
                     within(r->method, r->method_len, p.buf, r->head_len) && r->method_len > 0 &&
                     within(r->target, r->target_len, p.buf, r->head_len) && r->target[0] == '/' &&
                     r->path_len <= r->target_len && (r->minor == 0 || r->minor == 1) && r->n_headers >= 0 &&
                     r->n_headers <= HTTP_MAX_HEADERS && r->content_length >= -1 &&
                     (r->keep_alive == 0 || r->keep_alive == 1) &&
                     (r->expect_continue == 0 || r->expect_continue == 1);
            for (int i = 0; ok && i < r->n_headers; i++)
                ok = within(r->headers[i].name, r->headers[i].name_len, p.buf, r->head_len) &&
                     within(r->headers[i].value, r->headers[i].value_len, p.buf, r->head_len) &&
                     r->headers[i].name_len > 0;
            if (!ok) TEST_FAIL_AT("iter %d: inconsistent OK request", iter);
            parsed q;
            parse_n(&q, work, r->head_len - 1, max_head);
            if (q.rc != HTTP_PARSE_INCOMPLETE)
                TEST_FAIL_AT("iter %d: OK head's prefix gives %d (%s)", iter, q.rc, q.err);
            done(&q);
        } else if (p.rc == HTTP_PARSE_ERROR) {
            int k = p.status == 400 ? 0 : p.status == 431 ? 1 : p.status == 501 ? 2 : p.status == 505 ? 3 : -1;
            if (k < 0) TEST_FAIL_AT("iter %d: status %d", iter, p.status);
            else by_status[k]++;
            if (!p.err[0] || strchr(p.err, '\n') || !strcmp(p.err, "unset"))
                TEST_FAIL_AT("iter %d: error message '%s'", iter, p.err);
        } else if (len >= max_head) {
            TEST_FAIL_AT("iter %d: INCOMPLETE with len %zu >= max_head %zu", iter, len, max_head);
        }
        done(&p);
    }
    /* The mutations must reach every outcome, else the loop proves little. */
    CHECK(counts[HTTP_PARSE_OK] > 100);
    CHECK(counts[HTTP_PARSE_INCOMPLETE] > 100);
    CHECK(counts[HTTP_PARSE_ERROR] > 100);
    CHECK(by_status[0] > 0 && by_status[1] > 0 && by_status[3] > 0);
}

/* RFC 6455 section 1.3's example, and keys that are not 16-byte nonces. */
static void test_ws_accept(void) {
    char out[29];
    REQUIRE(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out) == 0);
    CHECK(!strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    CHECK(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ=", 23, out) == -1);
    CHECK(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ=A", 24, out) == -1);
    CHECK(http_ws_accept("dGhlIHNhbXBsZS!ub25jZQ==", 24, out) == -1);
    CHECK(http_ws_accept("dGhlIHNhbXBsZSB\0b25jZQ==", 24, out) == -1);
}

/* Frame heads: every length form, masks, and the malformed ones. */
static void test_ws_frames(void) {
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        unsigned char h[14];
        size_t hl = ws_build_head(h, WS_BINARY, lens[i]);
        CHECK_EQ_INT(hl, lens[i] < 126 ? 2 : lens[i] <= 65535 ? 4 : 10);
        ws_frame f;
        char err[128];
        for (size_t k = 0; k < hl; k++) CHECK_EQ_INT(ws_parse_head(h, k, &f, err, sizeof err), 0);
        REQUIRE(ws_parse_head(h, hl, &f, err, sizeof err) == 1);
        CHECK(f.fin == 1 && f.opcode == WS_BINARY && !f.masked && f.payload_len == lens[i] && f.head_len == hl);
    }
    /* a masked client text frame "Hello" (RFC 6455 5.7) */
    unsigned char m[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_frame f;
    char err[128];
    REQUIRE(ws_parse_head(m, sizeof m, &f, err, sizeof err) == 1);
    CHECK(f.masked && f.opcode == WS_TEXT && f.payload_len == 5 && f.head_len == 6);
    ws_unmask(m + 6, 2, f.mask, 0); /* in two pieces: the offset keeps the mask phase */
    ws_unmask(m + 8, 3, f.mask, 2);
    CHECK(!memcmp(m + 6, "Hello", 5));
    static const unsigned char bad[][10] = {
        {0xC1, 0x00},                   /* RSV1 */
        {0x83, 0x00},                   /* opcode 3 */
        {0x8B, 0x00},                   /* opcode 11 */
        {0x09, 0x00},                   /* ping not final */
        {0x89, 0x7E, 0x00, 0x7E},       /* ping over 125 */
        {0x82, 0x7E, 0x00, 0x10},       /* 16 in the 16-bit form */
        {0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, /* 65535 in the 64-bit form */
        {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0},    /* bit 63 set */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (ws_parse_head(bad[i], 10, &f, err, sizeof err) != -1) TEST_FAIL_AT("bad frame %zu accepted", i);
        CHECK(err[0] != 0);
    }
}

TEST_MAIN(T(test_get), T(test_post_body), T(test_header_lookup), T(test_ows_trim), T(test_bare_lf),
          T(test_leading_empty_lines), T(test_request_line_errors), T(test_header_errors),
          T(test_content_length_errors), T(test_transfer_encoding), T(test_keep_alive), T(test_expect_continue),
          T(test_incomplete_prefixes), T(test_early_error), T(test_max_head), T(test_header_count),
          T(test_token_eq), T(test_reason), T(test_fuzz), T(test_ws_accept), T(test_ws_frames))
