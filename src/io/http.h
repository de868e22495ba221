/*
 * HTTP/1.x request-head parser (the server's input side; no sockets here).
 *
 * Data flow: the bytes read so far from a connection -> http_parse_request
 * -> INCOMPLETE (read more), ERROR (answer `status` and close) or OK with a
 * request whose strings point into the caller's buffer. The body is not
 * parsed here: OK gives its length (Content-Length) and where it starts
 * (head_len); chunked request bodies are refused (501), as are
 * Content-Length and Transfer-Encoding together (400).
 *
 * Hostile input: every length is bounded (head, request line, header count),
 * only the bytes [0, len) are read, nothing is NUL-terminated by the caller
 * and nothing is allocated. Accepted: "METHOD SP target SP HTTP/1.0|1.1
 * CRLF", then "name: value CRLF" lines (name a token, value of visible
 * ASCII, SP, TAB or bytes >= 0x80; optional whitespace around it trimmed),
 * then CRLF. Bare LF line ends are accepted (RFC 9112 §2.2); obsolete line
 * folding, a space before the colon, NUL or other control bytes are errors.
 */
#ifndef CTTS_IO_HTTP_H
#define CTTS_IO_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

typedef struct {
    const char *name, *value; /* into the parsed buffer, not NUL-terminated */
    size_t name_len, value_len;
} http_header;

typedef struct {
    const char *method, *target; /* target: the request-target as sent (origin form) */
    size_t method_len, target_len;
    size_t path_len;             /* bytes of target before '?' (the path) */
    int minor;                   /* HTTP/1.<minor>: 0 or 1 */
    http_header headers[HTTP_MAX_HEADERS];
    int n_headers;
    size_t head_len;        /* bytes of the head, its blank line included: the body starts here */
    int64_t content_length; /* -1 when the request has no Content-Length */
    int keep_alive;         /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    int expect_continue;    /* "Expect: 100-continue" */
} http_request;

typedef enum { HTTP_PARSE_OK = 0, HTTP_PARSE_INCOMPLETE = 1, HTTP_PARSE_ERROR = 2 } http_parse_result;

/* Parses the request head in buf[0, len). max_head bounds the head (request
 * line + headers + blank line): INCOMPLETE is never returned once len >=
 * max_head (ERROR 431 instead). On ERROR *status is the HTTP status to answer
 * (400 malformed, 431 head too large or too many headers, 501 unsupported
 * transfer coding, 505 version other than 1.0 / 1.1) and err says why in one
 * line. Content-Length: digits only, at most 18 of them; repeated values must
 * agree. Leading empty lines before the request line are skipped (RFC 9112
 * §2.2), at most 8 of them. */
http_parse_result http_parse_request(const char *buf, size_t len, size_t max_head, http_request *r,
                                     int *status, char *err, size_t err_len);

/* First header named `name` (case-insensitive); NULL if absent. */
const http_header *http_find_header(const http_request *r, const char *name);

/* 1 when the first len bytes of s equal the NUL-terminated t, case-insensitively. */
int http_token_eq(const char *s, size_t len, const char *t);

/* The reason phrase of a status code ("OK", "Bad Request", ...; "" if unknown). */
const char *http_reason(int status);

/* ---- WebSocket (RFC 6455) ---- */

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key +
 * the RFC's GUID)) into out (29 bytes with the NUL). -1 when the key is not
 * 24 base64 characters (a 16-byte nonce). */
int http_ws_accept(const char *key, size_t key_len, char out[29]);

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

typedef struct {
    int fin, opcode, masked;
    unsigned char mask[4];
    uint64_t payload_len;
    size_t head_len; /* bytes before the payload */
} ws_frame;

/* Parses a frame head in buf[0, len): 1 complete (f filled), 0 incomplete,
 * -1 malformed (reserved bits, unknown opcode, a control frame fragmented or
 * over 125 bytes, a non-minimal or 63-bit-overflowing length) with err. */
int ws_parse_head(const unsigned char *buf, size_t len, ws_frame *f, char *err, size_t err_len);

/* An unmasked (server) frame head for a payload of n bytes into out (at most
 * 10 bytes); returns its length. */
size_t ws_build_head(unsigned char *out, int opcode, uint64_t n);

/* XORs n payload bytes with the mask, from payload offset `offset`. */
void ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t offset);

#endif
