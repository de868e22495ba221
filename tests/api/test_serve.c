/*
 * `ctts serve`, driven over sockets as clients would ($CTTS_BIN, the golden
 * tiny models, --port 0):
 *  - /health and /v1/models answer JSON;
 *  - a whole WAV (s16 and f32) is byte for byte the file `ctts generate`
 *    writes with the same options; streamed (chunked) WAV and raw PCM carry
 *    the same samples;
 *  - keep-alive and pipelined requests on one connection;
 *  - concurrent streams are interleaved and each equals its request alone;
 *    different seeds give different audio;
 *  - a client leaving mid-stream cancels it and the next request is served;
 *  - Qwen3-TTS: "voice" names the speaker; an unknown one is a 400 that
 *    lists the speakers;
 *  - audio uploaded to /v1/voices is cloned and named by later requests
 *    (same audio as generate --voice FILE); junk, duplicates, CustomVoice
 *    models refused;
 *  - the WebSocket endpoint takes text in pieces and sends audio as it is
 *    made (before the text has ended), equal to generate on the whole text;
 *    pings answered; protocol errors closed with their codes;
 *  - /v1/voices lists the names "voice" takes; --cors answers preflights and
 *    marks every response;
 *  - malformed or refused requests get their status (400 404 405 411 413
 *    431 501 505) and a JSON error; the server keeps serving;
 *  - SIGTERM stops it with exit status 0 (under ASan: no leaks).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "io/http.h"

static char tmpdir[64];

static const char *model(const char *set) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s/model", test_golden_dir(), set);
    return buf[k];
}

typedef struct {
    pid_t pid;
    int port;
} server;

/* Starts `ctts serve --model M --port 0 --threads 1 [extra...]` and reads the
 * port from its first stderr line. */
static int srv_start(server *s, const char *m, const char *const *extra) {
    int pfd[2];
    if (pipe(pfd)) return -1;
    const char *argv[24] = {test_ctts_bin(), "serve", "--model", m, "--port", "0", "--threads", "1"};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 23; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        /* A failed test (REQUIRE returns early) must not leave the server
         * running: it dies with the test, and never holds the test's stdout
         * (tests/run.sh reads that to its end). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char line[1024];
    size_t len = 0;
    while (len + 1 < sizeof line) { /* one line, read byte by byte */
        ssize_t r = read(pfd[0], line + len, 1);
        if (r <= 0 || line[len] == '\n') break;
        len++;
    }
    line[len] = 0;
    close(pfd[0]); /* later stderr output gets SIGPIPE-free EPIPE: the server ignores SIGPIPE */
    const char *p = strstr(line, "http://127.0.0.1:");
    s->port = p ? atoi(p + 17) : 0;
    if (!s->port) fprintf(stderr, "    server did not start: '%s'\n", line);
    return s->port ? 0 : -1;
}

/* SIGTERM and the exit status (0 expected). */
static int srv_stop(server *s) {
    kill(s->pid, SIGTERM);
    int st = 0;
    if (waitpid(s->pid, &st, 0) != s->pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_str(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w, n -= (size_t)w;
    }
    return 0;
}

/* Everything until the server closes. */
static char *read_all(int fd, size_t *n) {
    size_t cap = 1 << 16;
    char *b = malloc(cap + 1);
    *n = 0;
    for (;;) {
        if (*n == cap) b = realloc(b, (cap *= 2) + 1);
        ssize_t r = recv(fd, b + *n, cap - *n, 0);
        if (r <= 0) break;
        *n += (size_t)r;
    }
    b[*n] = 0;
    return b;
}

typedef struct {
    int status;
    char head[2048];
    unsigned char *body; /* de-chunked */
    size_t n;
    int complete; /* Content-Length reached, or the final empty chunk seen */
    size_t used;  /* bytes of the raw input this response took */
} response;

/* Parses one response at raw[0, len). 0, or -1 when there is no head. */
static int parse_response(const char *raw, size_t len, response *r) {
    memset(r, 0, sizeof *r);
    const char *e = NULL;
    for (size_t i = 0; i + 3 < len && !e; i++)
        if (!memcmp(raw + i, "\r\n\r\n", 4)) e = raw + i + 4;
    if (!e || len < 12 || sscanf(raw, "HTTP/1.1 %d", &r->status) != 1) return -1;
    size_t hl = (size_t)(e - raw);
    memcpy(r->head, raw, hl < sizeof r->head - 1 ? hl : sizeof r->head - 1);
    r->body = malloc(len - hl + 1);
    const char *p = e, *end = raw + len;
    if (strstr(r->head, "Transfer-Encoding: chunked")) {
        for (;;) {
            char *nl;
            unsigned long sz = strtoul(p, &nl, 16);
            if (nl == p || nl + 2 > end || memcmp(nl, "\r\n", 2)) break;
            p = nl + 2;
            if ((size_t)(end - p) < sz + 2) break;
            memcpy(r->body + r->n, p, sz);
            r->n += sz;
            p += sz + 2;
            if (!sz) {
                r->complete = 1;
                break;
            }
        }
    } else {
        const char *cl = strstr(r->head, "Content-Length: ");
        size_t want = cl ? strtoul(cl + 16, NULL, 10) : 0;
        r->n = (size_t)(end - p) < want ? (size_t)(end - p) : want;
        memcpy(r->body, p, r->n);
        r->complete = r->n == want;
        p += r->n;
    }
    r->body[r->n] = 0;
    r->used = (size_t)(p - raw);
    return 0;
}

/* One request on its own connection ("Connection: close"). */
/* Sends bytes on a new connection (half-closed after them if shut_wr), reads
 * to the end and parses the first response. 0 on success. */
static int exchange(int port, const char *bytes, size_t n, int shut_wr, response *r) {
    int fd = connect_to(port);
    if (fd < 0) return -1;
    int rc = send_str(fd, bytes, n);
    if (shut_wr) shutdown(fd, SHUT_WR);
    size_t len;
    char *raw = read_all(fd, &len);
    close(fd);
    if (!rc) rc = parse_response(raw, len, r);
    free(raw);
    return rc;
}

static int request(int port, const char *method, const char *path, const char *body, response *r) {
    size_t bl = body ? strlen(body) : 0;
    char *req = malloc(bl + 512);
    int n = snprintf(req, 512, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", method, path);
    if (body) n += snprintf(req + n, 512 - (size_t)n, "Content-Length: %zu\r\n", bl);
    n += snprintf(req + n, 512 - (size_t)n, "\r\n");
    memcpy(req + n, body ? body : "", bl);
    int rc = exchange(port, req, (size_t)n + bl, 0, r);
    free(req);
    return rc;
}

/* The bytes `ctts generate` writes for text with extra options. */
static unsigned char *generate(const char *m, const char *text, const char *opts, size_t *n) {
    char cmd[2048], out[128];
    snprintf(out, sizeof out, "%s/gen.wav", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' --threads 1 --text '%s' --output '%s' %s",
             test_ctts_bin(), m, text, out, opts);
    if (system(cmd) != 0) return NULL;
    return test_read_file(out, n);
}

static const char *TEXT = "Hello world, this is a test of the server.";

/* Checks that r is the 200 answer whose body is the file `ctts generate`
 * writes for text with opts on model m. */
static void check_generate_equal(const response *r, const char *m, const char *text, const char *opts) {
    size_t gn;
    unsigned char *g = generate(m, text, opts, &gn);
    CHECK(g != NULL);
    if (g && !(r->status == 200 && r->n == gn && !memcmp(r->body, g, gn)))
        TEST_FAIL_AT("status %d, %zu bytes: not the %zu bytes of generate %s", r->status, r->n, gn, opts);
    free(g);
}

static void test_health_and_models(void) {
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    response r;
    REQUIRE(request(s.port, "GET", "/health", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.n == 16 && !memcmp(r.body, "{\"status\":\"ok\"}\n", 16));
    free(r.body);
    REQUIRE(request(s.port, "GET", "/v1/models", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS(r.head, "Content-Type: application/json");
    CHECK_STR_CONTAINS((char *)r.body, "\"family\":\"pocket\"");
    CHECK_STR_CONTAINS((char *)r.body, "\"sample_rate\":24000");
    free(r.body);
    REQUIRE(request(s.port, "GET", "/v1/voices", NULL, &r) == 0); /* a local config: no names */
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS((char *)r.body, "\"data\":[],\"kind\":\"none\",\"loaded\":[],\"default\":null");
    free(r.body);
    REQUIRE(request(s.port, "OPTIONS", "/v1/audio/speech", NULL, &r) == 0); /* no --cors */
    CHECK_EQ_INT(r.status, 405);
    CHECK(strstr(r.head, "Access-Control") == NULL);
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* POST /v1/voices?name=N with raw bytes (no Connection: close needed: it closes). */
static int upload(int port, const char *query_name, const unsigned char *data, size_t n, response *r) {
    char *req = malloc(n + 256);
    int h = snprintf(req, 256,
                     "POST /v1/voices%s%s HTTP/1.1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                     query_name ? "?name=" : "", query_name ? query_name : "", n);
    memcpy(req + h, data, n);
    int rc = exchange(port, req, (size_t)h + n, 0, r);
    free(req);
    return rc;
}

/* Voices uploaded as audio files, cloned by the server, named by requests. */
static void test_voice_upload(void) {
    char wav[512];
    snprintf(wav, sizeof wav, "%s/pocket-tiny/voice/voice_24k.wav", test_golden_dir());
    size_t wn;
    unsigned char *w = test_read_file(wav, &wn);
    REQUIRE(w && wn > 1000);
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    response r;
    REQUIRE(upload(s.port, "me", w, wn, &r) == 0);
    CHECK_EQ_INT(r.status, 201);
    CHECK_STR_CONTAINS((char *)r.body, "\"name\":\"me\"");
    free(r.body);
    REQUIRE(upload(s.port, "me", w, wn, &r) == 0);
    CHECK_EQ_INT(r.status, 409);
    free(r.body);
    REQUIRE(upload(s.port, NULL, w, wn, &r) == 0);
    CHECK_EQ_INT(r.status, 400);
    free(r.body);
    REQUIRE(upload(s.port, "junk", (const unsigned char *)"not audio at all", 16, &r) == 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK_STR_CONTAINS((char *)r.body, "the upload: not a readable audio file");
    CHECK(strstr((char *)r.body, "/tmp/") == NULL);
    free(r.body);
    REQUIRE(request(s.port, "GET", "/v1/voices", NULL, &r) == 0);
    CHECK_STR_CONTAINS((char *)r.body, "\"loaded\":[\"me\"]");
    free(r.body);
    char body[256], opts[700];
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"voice\":\"me\",\"seed\":3}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    snprintf(opts, sizeof opts, "--seed 3 --voice '%s' --no-voice-cache", wav);
    check_generate_equal(&r, model("pocket-tiny"), TEXT, opts);
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
    /* Qwen3-TTS Base: a transcript in the query asks for in-context cloning,
     * as generate does with "name.txt" beside "name.wav" */
    const char *extra[] = {"--max-new-tokens", "6", NULL};
    char base[512], qwav[512], ref[128], txt[128];
    snprintf(base, sizeof base, "%s/qwen3tts-tiny/model-base", test_golden_dir());
    REQUIRE(srv_start(&s, base, extra) == 0);
    snprintf(qwav, sizeof qwav, "%s/qwen3tts-tiny/voice/voice_ref_24k.wav", test_golden_dir());
    size_t qn;
    unsigned char *qw = test_read_file(qwav, &qn);
    REQUIRE(qw);
    snprintf(ref, sizeof ref, "%s/ref.wav", tmpdir);
    snprintf(txt, sizeof txt, "%s/ref.txt", tmpdir);
    FILE *f = fopen(ref, "wb");
    REQUIRE(f && fwrite(qw, 1, qn, f) == qn && fclose(f) == 0);
    f = fopen(txt, "wb");
    REQUIRE(f && fputs("This is the reference transcript.", f) >= 0 && fclose(f) == 0);
    REQUIRE(upload(s.port, "icl&text=This+is+the%20reference+transcript.", qw, qn, &r) == 0);
    CHECK_EQ_INT(r.status, 201);
    free(r.body);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech",
                    "{\"input\":\"Hello there.\",\"voice\":\"icl\",\"seed\":3}", &r) == 0);
    snprintf(opts, sizeof opts, "--seed 3 --max-new-tokens 6 --voice '%s'", ref);
    check_generate_equal(&r, base, "Hello there.", opts);
    free(r.body), free(qw);
    REQUIRE(upload(s.port, "x&text=bad%zz", w, wn, &r) == 0);
    CHECK_EQ_INT(r.status, 400);
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
    /* a CustomVoice model takes speakers, not cloned voices */
    REQUIRE(srv_start(&s, model("qwen3tts-tiny"), NULL) == 0);
    REQUIRE(upload(s.port, "me", w, wn, &r) == 0);
    CHECK_EQ_INT(r.status, 422);
    CHECK_STR_CONTAINS((char *)r.body, "base models clone voices");
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
    free(w);
}

/* ---- WebSocket client ---- */

static int ws_open(int port, const char *extra_head, char *resp, size_t cap) {
    int fd = connect_to(port);
    if (fd < 0) return -1;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/audio/speech/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     extra_head ? extra_head : "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    if (send_str(fd, req, (size_t)n)) return close(fd), -1;
    size_t len = 0; /* the response head, byte by byte so no frame is swallowed */
    while (len + 1 < cap && recv(fd, resp + len, 1, 0) == 1) {
        len++;
        if (len >= 4 && !memcmp(resp + len - 4, "\r\n\r\n", 4)) break;
    }
    resp[len] = 0;
    return fd;
}

/* A masked client frame. */
static int ws_put(int fd, int opcode, const char *p, size_t n) {
    unsigned char h[14], mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t hl = ws_build_head(h, opcode, n);
    h[1] |= 0x80;
    memcpy(h + hl, mask, 4);
    char *m = malloc(n + 1);
    memcpy(m, p, n);
    ws_unmask((unsigned char *)m, n, mask, 0);
    int rc = send_str(fd, (const char *)h, hl + 4) || send_str(fd, m, n);
    free(m);
    return rc;
}

/* One server frame: its opcode (-1 on error), payload malloc'd in *p. */
static int ws_get(int fd, unsigned char **p, size_t *n) {
    unsigned char h[14];
    if (recv(fd, h, 2, MSG_WAITALL) != 2) return -1;
    size_t more = (h[1] & 127) == 126 ? 2 : (h[1] & 127) == 127 ? 8 : 0;
    if (more && recv(fd, h + 2, more, MSG_WAITALL) != (ssize_t)more) return -1;
    ws_frame f;
    char err[64];
    if (ws_parse_head(h, 2 + more, &f, err, sizeof err) != 1 || f.masked) return -1;
    *n = (size_t)f.payload_len;
    *p = malloc(*n + 1);
    if (*n && recv(fd, *p, *n, MSG_WAITALL) != (ssize_t)*n) return free(*p), -1;
    (*p)[*n] = 0;
    return f.opcode;
}

/* Over a WebSocket of the server on port: options opts, then the pieces as
 * text messages (with pings), then "end". The audio equals generate's of the
 * whole text with gen_opts, and some of it arrives before "end". */
static void ws_speak_in_pieces(int port, const char *model_dir, const char *opts,
                               const char *const *pieces, int n_pieces, const char *gen_opts) {
    char resp[1024];
    int fd = ws_open(port, NULL, resp, sizeof resp);
    REQUIRE(fd >= 0);
    CHECK_STR_CONTAINS(resp, "HTTP/1.1 101 ");
    CHECK_STR_CONTAINS(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    char text[2048] = "", msg[512];
    CHECK(ws_put(fd, WS_TEXT, opts, strlen(opts)) == 0);
    unsigned char *pcm = NULL;
    size_t n_pcm = 0, got_before_end = 0;
    for (int i = 0; i < n_pieces; i++) {
        strcat(text, pieces[i]);
        int k = snprintf(msg, sizeof msg, "{\"text\":\"%s\"}", pieces[i]);
        CHECK(ws_put(fd, WS_TEXT, msg, (size_t)k) == 0);
        CHECK(ws_put(fd, WS_PING, "hi", 2) == 0);
    }
    /* before "end": audio (and the pongs) arrive */
    for (int pongs = 0; pongs < n_pieces || !got_before_end;) {
        unsigned char *p;
        size_t n;
        int op = ws_get(fd, &p, &n);
        REQUIRE(op >= 0);
        if (op == WS_PONG) {
            CHECK(n == 2 && !memcmp(p, "hi", 2));
            pongs++;
        }
        if (op == WS_BINARY) {
            pcm = realloc(pcm, n_pcm + n);
            memcpy(pcm + n_pcm, p, n);
            n_pcm += n, got_before_end += n;
        }
        free(p);
        if (op == WS_TEXT || op == WS_CLOSE) break;
    }
    CHECK(got_before_end > 0);
    CHECK(ws_put(fd, WS_TEXT, "{\"end\":true}", 12) == 0);
    int done = 0;
    for (;;) {
        unsigned char *p;
        size_t n;
        int op = ws_get(fd, &p, &n);
        if (op < 0) break;
        if (op == WS_BINARY) {
            pcm = realloc(pcm, n_pcm + n);
            memcpy(pcm + n_pcm, p, n);
            n_pcm += n;
        }
        if (op == WS_TEXT) done = strstr((char *)p, "\"done\":true") != NULL;
        free(p);
        if (op == WS_CLOSE) break;
    }
    close(fd);
    CHECK(done);
    size_t gn;
    unsigned char *g = generate(model_dir, text, gen_opts, &gn);
    CHECK(g && gn > 44 && n_pcm == gn - 44 && !memcmp(pcm, g + 44, n_pcm));
    free(g), free(pcm);
}

/* Text sent in pieces over the WebSocket gives generate's audio of the whole
 * text, and audio flows before the text has ended: Pocket (a chunk once
 * later text cannot change it) and Qwen3-TTS in the streaming text mode (a
 * frame once its text token is certain). */
static void test_websocket_stream(void) {
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    static const char *pieces[] = {
        "The first sentence is long enough to fill a chunk of its own, with many words in it, ",
        "more and more words, until the chunk cannot take another sentence at all. ",
        "The second sentence follows it, and it is also quite long, with words and ",
        "words again. A short third one.",
    };
    ws_speak_in_pieces(s.port, model("pocket-tiny"), "{\"seed\":5,\"eos_threshold\":1000,\"max_frames\":6}",
                       pieces, 4, "--seed 5 --eos-threshold 1000 --max-frames 6");
    char resp[1024];
    int fd;
    /* refusals: no key, a binary first message, a bad text message */
    fd = ws_open(s.port, "X-No-Key: 1\r\n", resp, sizeof resp);
    CHECK(fd >= 0 && strstr(resp, "HTTP/1.1 400 ") != NULL);
    close(fd);
    fd = ws_open(s.port, NULL, resp, sizeof resp);
    CHECK(ws_put(fd, WS_BINARY, "xx", 2) == 0);
    unsigned char *p;
    size_t n;
    int op = ws_get(fd, &p, &n);
    CHECK(op == WS_TEXT && strstr((char *)p, "options") != NULL);
    if (op >= 0) free(p);
    close(fd);
    fd = ws_open(s.port, NULL, resp, sizeof resp); /* an option the engine refuses */
    const char *bad_voice = "{\"voice\":\"nobody\",\"input\":\"Hi.\"}";
    CHECK(ws_put(fd, WS_TEXT, bad_voice, strlen(bad_voice)) == 0);
    op = ws_get(fd, &p, &n);
    CHECK(op == WS_TEXT && strstr((char *)p, "nobody") != NULL);
    if (op >= 0) free(p);
    op = ws_get(fd, &p, &n);
    CHECK(op == WS_CLOSE && n == 2 && p[0] == 1007 >> 8 && p[1] == (1007 & 255));
    if (op >= 0) free(p);
    close(fd);
    fd = ws_open(s.port, NULL, resp, sizeof resp);
    CHECK(ws_put(fd, WS_TEXT, "{}", 2) == 0);
    CHECK(ws_put(fd, WS_TEXT, "{\"txt\":1}", 9) == 0);
    op = ws_get(fd, &p, &n);
    CHECK(op == WS_TEXT && strstr((char *)p, "unknown field 'txt'") != NULL);
    if (op >= 0) free(p);
    op = ws_get(fd, &p, &n);
    CHECK(op == WS_CLOSE && n == 2 && p[0] == 1007 >> 8 && p[1] == (1007 & 255));
    if (op >= 0) free(p);
    close(fd);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

static void test_websocket_qwen(void) {
    server s;
    REQUIRE(srv_start(&s, model("qwen3tts-tiny"), NULL) == 0);
    static const char *pieces[] = {
        "The answer of an assistant, as the language model ", "writes it: a few words at a ti",
        "me, cut anywhere, caf\xc3\xa9 and all, ", "and the speech starts before it ends.",
    };
    ws_speak_in_pieces(s.port, model("qwen3tts-tiny"),
                       "{\"voice\":\"ryan\",\"seed\":5,\"max_new_tokens\":90}", /* streaming text: the default here */
                       pieces, 4, "--speaker ryan --seed 5 --text-mode streaming --max-new-tokens 90");
    CHECK_EQ_INT(srv_stop(&s), 0);
}

static void test_cors(void) {
    server s;
    const char *extra[] = {"--cors", "http://localhost:3000", NULL};
    REQUIRE(srv_start(&s, model("pocket-tiny"), extra) == 0);
    response r;
    REQUIRE(request(s.port, "OPTIONS", "/v1/audio/speech", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 204);
    CHECK_STR_CONTAINS(r.head, "Access-Control-Allow-Origin: http://localhost:3000\r\n");
    CHECK_STR_CONTAINS(r.head, "Access-Control-Allow-Methods: GET, POST, OPTIONS");
    free(r.body);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", "{\"input\":\"Hi.\",\"stream\":true}", &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS(r.head, "Access-Control-Allow-Origin: http://localhost:3000\r\n");
    free(r.body);
    REQUIRE(request(s.port, "GET", "/nothing", NULL, &r) == 0);
    CHECK_STR_CONTAINS(r.head, "Access-Control-Allow-Origin: http://localhost:3000\r\n");
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' serve --model '%s' --port 0 --cors 'a b' 2>/dev/null", test_ctts_bin(),
             model("pocket-tiny"));
    CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 2);
}

static void test_speech_equals_generate(void) {
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    size_t gn, gfn;
    unsigned char *g = generate(model("pocket-tiny"), TEXT, "--seed 5", &gn);
    unsigned char *gf = generate(model("pocket-tiny"), TEXT, "--seed 5 --wav-format f32", &gfn);
    REQUIRE(g && gf && gn > 44 + 1000);
    char body[512];
    response r;
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":5}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS(r.head, "Content-Type: audio/wav");
    CHECK(r.complete && r.n == gn && !memcmp(r.body, g, gn));
    free(r.body);
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":5,\"sample_format\":\"f32\"}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    CHECK(r.status == 200 && r.n == gfn && !memcmp(r.body, gf, gfn));
    free(r.body);
    /* streamed WAV: sizes unknown, same samples; raw PCM: the data alone */
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":5,\"stream\":true}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS(r.head, "Transfer-Encoding: chunked");
    CHECK(r.complete && r.n == gn);
    CHECK(r.n == gn && !memcmp(r.body, "RIFF\xff\xff\xff\xff", 8) && !memcmp(r.body + 8, g + 8, 32) &&
          !memcmp(r.body + 40, "\xff\xff\xff\xff", 4) && !memcmp(r.body + 44, g + 44, gn - 44));
    free(r.body);
    snprintf(body, sizeof body,
             "{\"input\":\"%s\",\"seed\":5,\"stream\":true,\"response_format\":\"pcm\",\"model\":\"tts-1\"}",
             TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    CHECK_STR_CONTAINS(r.head, "Content-Type: audio/pcm");
    CHECK(r.complete && r.n == gn - 44 && !memcmp(r.body, g + 44, gn - 44));
    free(r.body);
    /* another seed, other audio (the seed is the request's) */
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":6}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    CHECK(r.status == 200 && !(r.n == gn && !memcmp(r.body, g, gn)));
    free(r.body);
    free(g), free(gf);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

static void test_keepalive_pipelined(void) {
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    char body[256], req[2048];
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":5,\"response_format\":\"pcm\"}", TEXT);
    int n = snprintf(req, sizeof req,
                     "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s"
                     "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     strlen(body), body);
    int fd = connect_to(s.port);
    REQUIRE(fd >= 0);
    REQUIRE(send_str(fd, req, (size_t)n) == 0); /* all three in one write */
    size_t len;
    char *raw = read_all(fd, &len);
    close(fd);
    response a, b, c;
    REQUIRE(parse_response(raw, len, &a) == 0);
    REQUIRE(parse_response(raw + a.used, len - a.used, &b) == 0);
    REQUIRE(parse_response(raw + a.used + b.used, len - a.used - b.used, &c) == 0);
    CHECK(a.status == 200 && a.n == 16);
    CHECK(b.status == 200 && b.complete && b.n > 1000);
    CHECK(c.status == 200 && c.complete);
    CHECK_STR_CONTAINS((char *)c.body, "\"object\":\"list\"");
    CHECK_EQ_INT(a.used + b.used + c.used, len);
    free(a.body), free(b.body), free(c.body), free(raw);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* Three streams at once (fixed length: EOS off), each equal to its request alone. */
static void test_concurrent_streams(void) {
    server s;
    const char *extra[] = {"--max-sessions", "3", NULL};
    REQUIRE(srv_start(&s, model("pocket-tiny"), extra) == 0);
    char body[3][256];
    response alone[3];
    for (int i = 0; i < 3; i++) {
        snprintf(body[i], sizeof body[i],
                 "{\"input\":\"%s\",\"seed\":%d,\"stream\":true,\"eos_threshold\":1000,"
                 "\"max_frames\":30,\"response_format\":\"pcm\"}",
                 TEXT, 10 + i);
        REQUIRE(request(s.port, "POST", "/v1/audio/speech", body[i], &alone[i]) == 0);
        CHECK(alone[i].status == 200 && alone[i].complete && alone[i].n == 30 * 1920 * 2);
    }
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = connect_to(s.port);
        REQUIRE(fd[i] >= 0);
        char req[512];
        int n = snprintf(req, sizeof req,
                         "POST /v1/audio/speech HTTP/1.1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(body[i]), body[i]);
        REQUIRE(send_str(fd[i], req, (size_t)n) == 0);
    }
    for (int i = 0; i < 3; i++) {
        size_t len;
        char *raw = read_all(fd[i], &len);
        close(fd[i]);
        response r;
        REQUIRE(parse_response(raw, len, &r) == 0);
        CHECK(r.complete && r.n == alone[i].n && !memcmp(r.body, alone[i].body, r.n));
        if (i) CHECK(memcmp(alone[i].body, alone[0].body, alone[0].n) != 0);
        free(r.body), free(raw);
    }
    for (int i = 0; i < 3; i++) free(alone[i].body);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* Qwen3-TTS streams at once are stepped together (batched decode): each is
 * still the file generate writes for it alone. */
static void test_concurrent_qwen(void) {
    server s;
    const char *extra[] = {"--max-sessions", "3", NULL};
    REQUIRE(srv_start(&s, model("qwen3tts-tiny"), extra) == 0);
    static const char *speakers[3] = {"ryan", "vivian", "eric"};
    static const int tokens[3] = {13, 9, 11};
    int fd[3];
    for (int i = 0; i < 3; i++) {
        char body[256], req[512];
        snprintf(body, sizeof body,
                 "{\"input\":\"Hello there, voice %d.\",\"voice\":\"%s\",\"seed\":%d,"
                 "\"max_new_tokens\":%d,\"stream\":%s}",
                 i, speakers[i], 20 + i, tokens[i], i == 1 ? "true" : "false");
        int n = snprintf(req, sizeof req,
                         "POST /v1/audio/speech HTTP/1.1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(body), body);
        fd[i] = connect_to(s.port);
        REQUIRE(fd[i] >= 0);
        REQUIRE(send_str(fd[i], req, (size_t)n) == 0);
    }
    for (int i = 0; i < 3; i++) {
        size_t len;
        char *raw = read_all(fd[i], &len);
        close(fd[i]);
        response r;
        REQUIRE(parse_response(raw, len, &r) == 0);
        char text[64], opts[128];
        snprintf(text, sizeof text, "Hello there, voice %d.", i);
        snprintf(opts, sizeof opts, "--speaker %s --seed %d --max-new-tokens %d", speakers[i], 20 + i, tokens[i]);
        if (i == 1) { /* streamed: sizes unknown in the header; the samples must agree */
            size_t gn;
            unsigned char *g = generate(model("qwen3tts-tiny"), text, opts, &gn);
            CHECK(g && r.complete && r.n == gn && !memcmp(r.body + 44, g + 44, gn - 44));
            free(g);
        } else {
            check_generate_equal(&r, model("qwen3tts-tiny"), text, opts);
        }
        free(r.body), free(raw);
    }
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* A client that leaves mid-stream: the server cancels it and serves the next. */
static void test_disconnect_mid_stream(void) {
    server s;
    REQUIRE(srv_start(&s, model("pocket-tiny"), NULL) == 0);
    char body[256], req[512];
    snprintf(body, sizeof body,
             "{\"input\":\"%s\",\"stream\":true,\"eos_threshold\":1000,\"max_frames\":100000}", TEXT);
    int n = snprintf(req, sizeof req, "POST /v1/audio/speech HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    int fd = connect_to(s.port);
    REQUIRE(fd >= 0);
    REQUIRE(send_str(fd, req, (size_t)n) == 0);
    char buf[4096];
    ssize_t got = recv(fd, buf, sizeof buf, MSG_WAITALL); /* the stream has begun */
    CHECK(got == (ssize_t)sizeof buf && !memcmp(buf, "HTTP/1.1 200", 12));
    close(fd);
    response r;
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"seed\":5}", TEXT);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech", body, &r) == 0);
    check_generate_equal(&r, model("pocket-tiny"), TEXT, "--seed 5");
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

static void test_qwen_speaker_as_voice(void) {
    server s;
    const char *extra[] = {"--max-new-tokens", "6", NULL};
    REQUIRE(srv_start(&s, model("qwen3tts-tiny"), extra) == 0);
    response r;
    REQUIRE(request(s.port, "POST", "/v1/audio/speech",
                    "{\"input\":\"Hello there.\",\"voice\":\"ryan\",\"seed\":2}", &r) == 0);
    check_generate_equal(&r, model("qwen3tts-tiny"), "Hello there.",
                         "--speaker ryan --seed 2 --max-new-tokens 6");
    free(r.body);
    REQUIRE(request(s.port, "GET", "/v1/voices", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR_CONTAINS((char *)r.body, "\"ryan\"");
    CHECK_STR_CONTAINS((char *)r.body, "\"kind\":\"speaker\"");
    free(r.body);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech",
                    "{\"input\":\"Hello there.\",\"voice\":\"nobody\"}", &r) == 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK_STR_CONTAINS((char *)r.body, "unknown speaker 'nobody'");
    CHECK_STR_CONTAINS((char *)r.body, "ryan");
    free(r.body);
    REQUIRE(request(s.port, "POST", "/v1/audio/speech",
                    "{\"input\":\"Hello there.\",\"voice\":\"ryan\",\"speaker\":\"eric\"}", &r) == 0);
    CHECK_EQ_INT(r.status, 400);
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* Raw requests and the status each must get. */
static void test_bad_requests(void) {
    server s;
    const char *extra[] = {"--max-text", "100", NULL};
    REQUIRE(srv_start(&s, model("pocket-tiny"), extra) == 0);
    char big_head[20000];
    int n = snprintf(big_head, sizeof big_head, "GET /health HTTP/1.1\r\nX-Long: ");
    memset(big_head + n, 'a', sizeof big_head - (size_t)n - 5);
    memcpy(big_head + sizeof big_head - 5, "\r\n\r\n", 5);
    /* raw: the head without its blank line; body: sent with its Content-Length */
    static const struct {
        const char *raw, *body;
        int status;
        const char *msg;
    } cases[] = {
        {"GET /nothing HTTP/1.1\r\n", NULL, 404, "no such endpoint"},
        {"DELETE /health HTTP/1.1\r\n", NULL, 405, "use GET"},
        {"GET /v1/audio/speech HTTP/1.1\r\n", NULL, 405, "use POST"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", NULL, 411, "Content-Length"},
        {"POST /v1/audio/speech HTTP/1.1\r\nContent-Length: 2000000\r\n", NULL, 413, "body over"},
        {"POST /v1/audio/speech HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", NULL, 501, ""},
        {"GET /health HTTP/2.0\r\n", NULL, 505, ""},
        {"GET /health\r\n", NULL, 400, ""},
        {"G\001T /health HTTP/1.1\r\n", NULL, 400, ""},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"in", 400, "request body"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "[]", 400, "JSON object"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"\"}", 400, "non-empty"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":1}", 400, "'input'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"foo\":1}", 400, "unknown field 'foo'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"seed\":1}", 400, "missing"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"input\":\"b\"}", 400, "given twice"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"voice\":\"../x\"}", 400, "'voice'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"response_format\":\"mp3\"}", 400, "not supported"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"speed\":2}", 400, "'speed'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"temperature\":-1}", 400, "'temperature'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"stream\":1}", 400, "'stream'"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"a\",\"voice\":\"zz\"}", 400, "voice"},
        {"POST /v1/audio/speech HTTP/1.1\r\n", "{\"input\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", 400, "over the server's limit"},
        {NULL, NULL, 431, ""}, /* a head over 16 KiB */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char raw[1024];
        const char *p = raw;
        size_t len;
        if (!cases[i].raw) {
            p = big_head, len = sizeof big_head - 1;
        } else if (cases[i].body) {
            len = (size_t)snprintf(raw, sizeof raw, "%sContent-Length: %zu\r\n\r\n%s", cases[i].raw,
                                   strlen(cases[i].body), cases[i].body);
        } else {
            len = (size_t)snprintf(raw, sizeof raw, "%s\r\n", cases[i].raw);
        }
        response r;
        if (exchange(s.port, p, len, 1, &r) != 0) {
            TEST_FAIL_AT("case %zu: no response", i);
        } else {
            if (r.status != cases[i].status)
                TEST_FAIL_AT("case %zu: status %d, expected %d", i, r.status, cases[i].status);
            r.body[r.n] = 0;
            if (!strstr((char *)r.body, "\"error\"") || !strstr((char *)r.body, cases[i].msg))
                TEST_FAIL_AT("case %zu: body '%.200s' lacks '%s'", i, (char *)r.body, cases[i].msg);
            free(r.body);
        }
    }
    response r; /* still serving */
    REQUIRE(request(s.port, "GET", "/health", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    free(r.body);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

/* A head trickled in byte by byte is cut at --timeout (a slow-loris client). */
static void test_slow_head_timeout(void) {
    server s;
    const char *extra[] = {"--timeout", "1", NULL};
    REQUIRE(srv_start(&s, model("pocket-tiny"), extra) == 0);
    int fd = connect_to(s.port);
    REQUIRE(fd >= 0);
    const char *head = "GET /health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for (size_t i = 0; i < strlen(head); i++) {
        if (send(fd, head + i, 1, MSG_NOSIGNAL) != 1) break; /* cut: the answer is waiting */
        usleep(100000);
    }
    size_t len;
    char *raw = read_all(fd, &len);
    close(fd);
    response r;
    REQUIRE(parse_response(raw, len, &r) == 0);
    CHECK_EQ_INT(r.status, 408);
    free(r.body), free(raw);
    CHECK_EQ_INT(srv_stop(&s), 0);
}

static void test_bad_options(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' serve --model '%s' --port 70000 2>/dev/null", test_ctts_bin(),
             model("pocket-tiny"));
    CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "'%s' serve --model /nonexistent --port 0 2>/dev/null", test_ctts_bin());
    CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "'%s' serve --model '%s' --port 0 --host no.such.host.invalid 2>/dev/null",
             test_ctts_bin(), model("pocket-tiny"));
    CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 1);
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_serve_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    static const test_entry tests[] = {
        T(test_health_and_models), T(test_speech_equals_generate), T(test_keepalive_pipelined),
        T(test_concurrent_streams), T(test_concurrent_qwen), T(test_websocket_qwen), T(test_disconnect_mid_stream), T(test_qwen_speaker_as_voice),
        T(test_bad_requests),      T(test_bad_options),          T(test_cors),
        T(test_voice_upload),      T(test_websocket_stream),     T(test_slow_head_timeout),
    };
    int rc = test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) rc = 1;
    return rc;
}
