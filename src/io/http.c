/*
 * HTTP/1.x request-head parser: one pass over buf[0, len), line by line.
 *
 * Each line is found with memchr (never past min(len, max_head)) and checked
 * as soon as it is complete; the last, still incomplete line is checked as
 * far as it goes, so garbage (a control byte in the request line, a space
 * before a colon, ...) is refused at once instead of waiting for max_head
 * bytes. Header semantics (Content-Length, Transfer-Encoding, Connection,
 * Expect) are applied per complete header line; the Transfer-Encoding
 * verdict waits for the blank line, since Content-Length may follow it.
 *
 * Choices: the asterisk-form target ("OPTIONS * HTTP/1.1") is refused with
 * 400 (we serve no server-wide OPTIONS); a comma list as Content-Length
 * ("5, 5") is refused with 400 like any other non-digit value; a target
 * longer than 8 KiB is 400 (the statuses stay within 400/431/501/505);
 * target bytes >= 0x80 pass (only controls and spaces are refused);
 * "Connection: keep-alive, close" means close, for 1.0 as for 1.1.
 */
#include "io/http.h"

#include "base/sha1.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HTTP_MAX_METHOD 32
#define HTTP_MAX_TARGET 8192
#define HTTP_MAX_LEADING_EMPTY 8

typedef struct {
    http_request *r;
    int *status;
    char *err;
    size_t err_len;
    int n_line;        /* 1-based number of the header line being checked */
    int close, keep;   /* Connection tokens seen */
    int chunked;       /* Transfer-Encoding seen */
} http_parser;

static http_parse_result parser_fail(http_parser *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static http_parse_result parser_fail(http_parser *p, int status, const char *fmt, ...) {
    if (p->status) *p->status = status;
    if (p->err && p->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->err_len, fmt, ap);
        va_end(ap);
    }
    return HTTP_PARSE_ERROR;
}

/* RFC 9110 tchar: the bytes of a method or header name. */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Header value bytes: HTAB, SP, visible ASCII, obs-text. */
static int is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7F); }

/* Request-target bytes: visible ASCII or >= 0x80 (no controls, no space). */
static int is_target_byte(unsigned char c) { return c > 0x20 && c != 0x7F; }

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* "'x'" for a visible byte, "byte 0xNN" otherwise, for error messages. */
static const char *describe_byte(unsigned char c, char *buf, size_t n) {
    if (c >= 0x21 && c < 0x7F)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02X", c);
    return buf;
}

int http_token_eq(const char *s, size_t len, const char *t) {
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)t[i];
        if (b == 0) return 0;
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
        if (a != b) return 0;
    }
    return t[len] == 0;
}

const http_header *http_find_header(const http_request *r, const char *name) {
    for (int i = 0; i < r->n_headers; i++)
        if (http_token_eq(r->headers[i].name, r->headers[i].name_len, name)) return &r->headers[i];
    return NULL;
}

/* "METHOD SP target SP HTTP/1.x" in s[0, n); when !complete, s is a prefix of
 * the line and is checked only as far as it goes. */
static http_parse_result parse_request_line(http_parser *p, const char *s, size_t n, int complete) {
    http_request *r = p->r;
    char what[16];
    size_t i = 0;
    while (i < n && i <= HTTP_MAX_METHOD && is_tchar((unsigned char)s[i])) i++;
    if (i > HTTP_MAX_METHOD)
        return parser_fail(p, 400, "request line: method longer than %d bytes", HTTP_MAX_METHOD);
    if (i == n)
        return complete ? parser_fail(p, 400, "request line: no request target") : HTTP_PARSE_INCOMPLETE;
    if (i == 0)
        return parser_fail(p, 400, "request line: starts with %s, not a method",
                           describe_byte((unsigned char)s[0], what, sizeof what));
    if (s[i] != ' ')
        return parser_fail(p, 400, "request line: %s in method",
                           describe_byte((unsigned char)s[i], what, sizeof what));
    r->method = s;
    r->method_len = i;

    size_t t0 = ++i;
    while (i < n && i - t0 <= HTTP_MAX_TARGET && is_target_byte((unsigned char)s[i])) i++;
    size_t tlen = i - t0;
    if (tlen > HTTP_MAX_TARGET)
        return parser_fail(p, 400, "request line: target longer than %d bytes", HTTP_MAX_TARGET);
    /* A lone "*" (asterisk form) gets its own message below, once the target has ended. */
    if (tlen > 0 && s[t0] != '/' && !(s[t0] == '*' && tlen == 1))
        return parser_fail(p, 400, "request line: target does not start with '/'");
    if (i == n)
        return complete ? parser_fail(p, 400, "request line: no HTTP version") : HTTP_PARSE_INCOMPLETE;
    if (s[i] != ' ')
        return parser_fail(p, 400, "request line: %s in target",
                           describe_byte((unsigned char)s[i], what, sizeof what));
    if (tlen == 0) return parser_fail(p, 400, "request line: empty target");
    if (s[t0] == '*') return parser_fail(p, 400, "request line: asterisk-form target not supported");
    r->target = s + t0;
    r->target_len = tlen;
    const char *q = memchr(r->target, '?', tlen);
    r->path_len = q ? (size_t)(q - r->target) : tlen;

    /* "HTTP/" DIGIT "." DIGIT, byte by byte so a prefix can be checked. */
    const char *v = s + i + 1;
    size_t vn = n - i - 1;
    static const char pattern[] = "HTTP/9.9";
    if (vn > 8) return parser_fail(p, 400, "request line: malformed HTTP version");
    for (size_t k = 0; k < vn; k++) {
        int ok = pattern[k] == '9' ? v[k] >= '0' && v[k] <= '9' : v[k] == pattern[k];
        if (!ok) return parser_fail(p, 400, "request line: malformed HTTP version");
    }
    if (vn < 8)
        return complete ? parser_fail(p, 400, "request line: malformed HTTP version") : HTTP_PARSE_INCOMPLETE;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return parser_fail(p, 505, "request line: HTTP/%c.%c not supported", v[5], v[7]);
    r->minor = v[7] - '0';
    return complete ? HTTP_PARSE_OK : HTTP_PARSE_INCOMPLETE;
}

/* Connection: a comma list of tokens; only "close" and "keep-alive" matter. */
static void scan_connection(http_parser *p, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t a = i;
        while (i < n && s[i] != ',') i++;
        size_t b = i++;
        while (a < b && is_ows(s[a])) a++;
        while (b > a && is_ows(s[b - 1])) b--;
        if (http_token_eq(s + a, b - a, "close")) p->close = 1;
        if (http_token_eq(s + a, b - a, "keep-alive")) p->keep = 1;
    }
}

/* Applies what a complete header means for the request. */
static http_parse_result apply_header(http_parser *p, const http_header *h) {
    http_request *r = p->r;
    if (http_token_eq(h->name, h->name_len, "content-length")) {
        /* 18 digits cannot overflow int64; a comma list ("5, 5") is refused too. */
        int64_t v = 0;
        size_t i = 0;
        while (i < h->value_len && i < 18 && h->value[i] >= '0' && h->value[i] <= '9')
            v = v * 10 + (h->value[i++] - '0');
        if (i == 0 || i != h->value_len)
            return parser_fail(p, 400, "header line %d: Content-Length must be 1 to 18 digits", p->n_line);
        if (r->content_length >= 0 && r->content_length != v)
            return parser_fail(p, 400, "header line %d: conflicting Content-Length values", p->n_line);
        r->content_length = v;
    } else if (http_token_eq(h->name, h->name_len, "transfer-encoding")) {
        p->chunked = 1;
    } else if (http_token_eq(h->name, h->name_len, "connection")) {
        scan_connection(p, h->value, h->value_len);
    } else if (http_token_eq(h->name, h->name_len, "expect")) {
        if (http_token_eq(h->value, h->value_len, "100-continue")) r->expect_continue = 1;
    }
    return HTTP_PARSE_OK;
}

/* "name: value" in s[0, n); a prefix of the line when !complete. */
static http_parse_result parse_header_line(http_parser *p, const char *s, size_t n, int complete) {
    char what[16];
    if (is_ows(s[0])) return parser_fail(p, 400, "header line %d: obsolete line folding", p->n_line);
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == n)
        return complete ? parser_fail(p, 400, "header line %d: no colon", p->n_line) : HTTP_PARSE_INCOMPLETE;
    if (is_ows(s[i])) return parser_fail(p, 400, "header line %d: space before colon", p->n_line);
    if (s[i] != ':')
        return parser_fail(p, 400, "header line %d: %s in header name", p->n_line,
                           describe_byte((unsigned char)s[i], what, sizeof what));
    if (i == 0) return parser_fail(p, 400, "header line %d: empty header name", p->n_line);
    size_t name_len = i++;
    for (size_t k = i; k < n; k++)
        if (!is_value_byte((unsigned char)s[k]))
            return parser_fail(p, 400, "header line %d: control byte 0x%02X in value", p->n_line,
                               (unsigned char)s[k]);
    if (!complete) return HTTP_PARSE_INCOMPLETE;

    size_t a = i, b = n;
    while (a < b && is_ows(s[a])) a++;
    while (b > a && is_ows(s[b - 1])) b--;
    http_header *h = &p->r->headers[p->r->n_headers++];
    h->name = s;
    h->name_len = name_len;
    h->value = s + a;
    h->value_len = b - a;
    return apply_header(p, h);
}

http_parse_result http_parse_request(const char *buf, size_t len, size_t max_head, http_request *r,
                                     int *status, char *err, size_t err_len) {
    http_parser p = {.r = r, .status = status, .err = err, .err_len = err_len};
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    if (status) *status = 0;
    if (err && err_len) err[0] = 0;

    /* Lines are searched only below limit: a head must end within max_head. */
    size_t limit = len < max_head ? len : max_head, pos = 0;
    int have_request_line = 0, empty_lines = 0;
    while (pos < limit) { /* each pass consumes one line, so at most limit passes */
        const char *nl = memchr(buf + pos, '\n', limit - pos);
        int complete = nl != NULL;
        size_t end = complete ? (size_t)(nl - buf) : limit;
        size_t n = end - pos;
        if (n > 0 && buf[end - 1] == '\r') n--; /* CRLF, or a CR whose LF has not arrived */
        const char *line = buf + pos;
        http_parse_result rc;

        if (!have_request_line) {
            if (n == 0) {
                if (!complete) break;
                if (++empty_lines > HTTP_MAX_LEADING_EMPTY)
                    return parser_fail(&p, 400, "more than %d empty lines before the request line",
                                       HTTP_MAX_LEADING_EMPTY);
                pos = end + 1;
                continue;
            }
            rc = parse_request_line(&p, line, n, complete);
            if (rc != HTTP_PARSE_OK) {
                if (rc == HTTP_PARSE_ERROR) return rc;
                break;
            }
            have_request_line = 1;
        } else {
            if (n == 0) {
                if (!complete) break;
                r->head_len = end + 1;
                if (p.chunked && r->content_length >= 0)
                    return parser_fail(&p, 400, "both Content-Length and Transfer-Encoding");
                if (p.chunked)
                    return parser_fail(&p, 501, "Transfer-Encoding not supported for request bodies");
                r->keep_alive = r->minor == 1 ? !p.close : p.keep && !p.close;
                return HTTP_PARSE_OK;
            }
            p.n_line = r->n_headers + 1;
            if (r->n_headers == HTTP_MAX_HEADERS)
                return parser_fail(&p, 431, "more than %d header lines", HTTP_MAX_HEADERS);
            rc = parse_header_line(&p, line, n, complete);
            if (rc == HTTP_PARSE_ERROR) return rc;
            if (!complete) break;
        }
        pos = end + 1;
    }
    if (len >= max_head) return parser_fail(&p, 431, "request head longer than %zu bytes", max_head);
    return HTTP_PARSE_INCOMPLETE;
}

const char *http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

/* ---- WebSocket ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int http_ws_accept(const char *key, size_t key_len, char out[29]) {
    /* 16 bytes in base64: 22 characters from the alphabet, then "==" */
    if (key_len != 24 || key[22] != '=' || key[23] != '=') return -1;
    for (size_t i = 0; i < 22; i++)
        if (!key[i] || !strchr(b64, key[i])) return -1;
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char d[21] = {0};
    ctts_sha1 h;
    ctts_sha1_init(&h);
    ctts_sha1_update(&h, key, key_len);
    ctts_sha1_update(&h, guid, sizeof guid - 1);
    ctts_sha1_final(&h, d);
    size_t o = 0;
    for (int i = 0; i < 21; i += 3) { /* 20 bytes: 6 full groups, then 2 bytes and '=' */
        const unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | (i + 2 < 20 ? d[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = i + 2 < 20 ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return 0;
}

int ws_parse_head(const unsigned char *buf, size_t len, ws_frame *f, char *err, size_t err_len) {
    memset(f, 0, sizeof *f);
    if (len < 2) return 0;
    f->fin = buf[0] >> 7;
    f->opcode = buf[0] & 15;
    f->masked = buf[1] >> 7;
    if (buf[0] & 0x70) return snprintf(err, err_len, "websocket: reserved bits set"), -1;
    if (f->opcode > 2 && f->opcode < 8) return snprintf(err, err_len, "websocket: opcode %d", f->opcode), -1;
    if (f->opcode > 10) return snprintf(err, err_len, "websocket: opcode %d", f->opcode), -1;
    uint64_t n = buf[1] & 127;
    size_t h = 2;
    if (n == 126 || n == 127) {
        const size_t k = n == 126 ? 2 : 8;
        if (len < h + k) return 0;
        n = 0;
        for (size_t i = 0; i < k; i++) n = n << 8 | buf[h + i];
        h += k;
        if ((k == 2 && n < 126) || (k == 8 && (n <= 0xFFFF || n >> 63)))
            return snprintf(err, err_len, "websocket: bad payload length"), -1;
    }
    if (f->opcode >= 8 && (!f->fin || n > 125))
        return snprintf(err, err_len, "websocket: control frame fragmented or over 125 bytes"), -1;
    if (f->masked) {
        if (len < h + 4) return 0;
        memcpy(f->mask, buf + h, 4);
        h += 4;
    }
    f->payload_len = n;
    f->head_len = h;
    return 1;
}

size_t ws_build_head(unsigned char *out, int opcode, uint64_t n) {
    out[0] = (unsigned char)(0x80 | (opcode & 15));
    if (n < 126) {
        out[1] = (unsigned char)n;
        return 2;
    }
    const size_t k = n <= 0xFFFF ? 2 : 8;
    out[1] = k == 2 ? 126 : 127;
    for (size_t i = 0; i < k; i++) out[2 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
    return 2 + k;
}

void ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t offset) {
    for (size_t i = 0; i < n; i++) p[i] ^= mask[(offset + i) & 3];
}
