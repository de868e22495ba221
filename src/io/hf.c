/*
 * Hugging Face hub downloads into the shared hub cache (layout in hf.h).
 *
 * Flow of hf_fetch(hf://org/name/path@rev):
 *   1. rev is a commit and snapshots/<rev>/<path> exists  -> done, no request.
 *   2. offline                                            -> cache lookup (refs/<rev>) or error.
 *   3. HEAD resolve URL -> commit, etag, size, location   (retries on 5xx/429/timeouts;
 *      any failure but 404 falls back to the cache as huggingface_hub does).
 *   4. refs/<rev> = commit; pointer exists -> done; blob exists -> link -> done.
 *   5. under .locks/<repo>/<etag>.lock: GET location into blobs/<etag>.incomplete
 *      (Range resume; a 200 answer to a Range restarts from 0), retry with
 *      exponential backoff, verify size and hash (SHA-256 for LFS etags, git
 *      blob SHA-1 for 40-hex etags), rename to blobs/<etag>, relative symlink.
 * A partial file is only ever named *.incomplete, so no later run can take it
 * as complete; a file failing verification is deleted.
 * The library never reads the environment: the caller passes ctts_hub_params.
 */
#include "io/hf.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/sha1.h"
#include "base/sha256.h"

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define MAX_REDIRECTS 10
#define HPATH 4096
#define URL_MAX 8192

/* ---- names ---- */

int hf_is_uri(const char *s) { return s && strncmp(s, "hf://", 5) == 0; }

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int is_commit(const char *s) { return is_hex(s, 40); }

/* A single path component made of [A-Za-z0-9._-], not "." or "..". */
static int safe_name(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A relative path: components separated by '/', none empty, ".", ".." or
 * holding control characters or backslashes. */
static int safe_path(const char *s) {
    if (!*s || *s == '/') return 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') return 0;
        if (!e) break;
        p = e + 1;
        if (!*p) return 0; /* trailing slash */
    }
    return 1;
}

ctts_status hf_parse_uri(const char *uri, hf_uri *u, char *err, size_t err_len) {
    memset(u, 0, sizeof *u);
    if (!hf_is_uri(uri))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s' is not an hf:// address", uri);
    const char *s = uri + 5;
    const char *slash1 = strchr(s, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (!slash1 || !slash2 || !slash2[1])
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "'%s': expected hf://ORG/REPO/PATH[@REVISION]", uri);
    size_t id_len = (size_t)(slash2 - s);
    if (id_len >= sizeof u->repo_id)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s': repo id too long", uri);
    memcpy(u->repo_id, s, id_len);
    char org[128], name[128];
    snprintf(org, sizeof org, "%.*s", (int)(slash1 - s), s);
    snprintf(name, sizeof name, "%.*s", (int)(slash2 - slash1 - 1), slash1 + 1);
    if (!safe_name(org, 96) || !safe_name(name, 96) || strstr(u->repo_id, "--") ||
        strstr(u->repo_id, ".."))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "'%s': invalid repo id '%s' (letters, digits, '.', '_', '-'; no '--' "
                        "or '..')", uri, u->repo_id);
    const char *path = slash2 + 1;
    const char *at = strchr(path, '@');
    size_t path_len = at ? (size_t)(at - path) : strlen(path);
    if (path_len >= sizeof u->filename)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s': path too long", uri);
    memcpy(u->filename, path, path_len);
    u->filename[path_len] = 0;
    if (at) {
        if (strchr(at + 1, '@') || strlen(at + 1) >= sizeof u->revision)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s': bad revision", uri);
        snprintf(u->revision, sizeof u->revision, "%s", at + 1);
    } else {
        snprintf(u->revision, sizeof u->revision, "main");
    }
    if (!safe_path(u->filename))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s': invalid file path '%s'", uri,
                        u->filename);
    if (!safe_path(u->revision) || strpbrk(u->revision, " \t"))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "'%s': invalid revision '%s'", uri,
                        u->revision);
    return CTTS_OK;
}

/* ---- params ---- */

ctts_hub_params hf_default_params(void) {
    ctts_hub_params p;
    memset(&p, 0, sizeof p);
    p.retries = 4;
    p.connect_timeout_ms = 10000;
    p.stall_timeout_s = 30;
    return p;
}

static char *dup_or_null(const char *s, int *fail) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

ctts_status hf_params_dup(const ctts_hub_params *src, ctts_hub_params *dst) {
    *dst = *src;
    int fail = 0;
    dst->cache_dir = dup_or_null(src->cache_dir, &fail);
    dst->endpoint = dup_or_null(src->endpoint, &fail);
    dst->token = dup_or_null(src->token, &fail);
    if (fail) {
        hf_params_free(dst);
        return CTTS_E_OOM;
    }
    return CTTS_OK;
}

void hf_params_free(ctts_hub_params *p) {
    free((char *)p->cache_dir);
    free((char *)p->endpoint);
    free((char *)p->token);
    p->cache_dir = p->endpoint = p->token = NULL;
}

/* ---- files ---- */

static ctts_status pathf(char *out, size_t cap, char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static ctts_status pathf(char *out, size_t cap, char *err, size_t err_len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "path too long: %.80s...", out);
    return CTTS_OK;
}

/* mkdir -p of the directory part of path (up to the last '/'). */
static ctts_status mkdirs_for(const char *path, char *err, size_t err_len) {
    char buf[HPATH];
    snprintf(buf, sizeof buf, "%s", path);
    char *last = strrchr(buf, '/');
    if (!last || last == buf) return CTTS_OK;
    *last = 0;
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return ctts_err(err, err_len, CTTS_E_IO, "cannot create directory %s: %s", buf,
                                strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ctts_err(err, err_len, CTTS_E_IO, "%s is not a directory", buf);
    return CTTS_OK;
}

/* 1 when path names (through links) a regular file. */
static int is_file(const char *path, int64_t *size) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    if (size) *size = (int64_t)sb.st_size;
    return 1;
}

static ctts_status copy_out(const char *src, char *path, size_t path_len, char *err,
                            size_t err_len) {
    if (!path || strlen(src) >= path_len)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "path buffer too small for %s", src);
    memcpy(path, src, strlen(src) + 1);
    return CTTS_OK;
}

/* Reads refs/<revision> (a commit hash). 0 on success. */
static int read_ref(const char *storage, const char *revision, char commit[64]) {
    char p[HPATH];
    if (snprintf(p, sizeof p, "%s/refs/%s", storage, revision) >= (int)sizeof p) return -1;
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    size_t n = fread(commit, 1, 63, f);
    fclose(f);
    commit[n] = 0;
    while (n && (commit[n - 1] == '\n' || commit[n - 1] == '\r' || commit[n - 1] == ' '))
        commit[--n] = 0;
    return safe_name(commit, 63) ? 0 : -1;
}

/* Writes refs/<revision> atomically when it differs. */
static ctts_status write_ref(const char *storage, const char *revision, const char *commit,
                             char *err, size_t err_len) {
    char cur[64];
    if (read_ref(storage, revision, cur) == 0 && strcmp(cur, commit) == 0) return CTTS_OK;
    char p[HPATH], tmp[HPATH + 32];
    ctts_status st = pathf(p, sizeof p, err, err_len, "%s/refs/%s", storage, revision);
    if (st == CTTS_OK) st = mkdirs_for(p, err, err_len);
    if (st != CTTS_OK) return st;
    /* The temporary file sits beside refs/, where no reader takes it for a ref. */
    snprintf(tmp, sizeof tmp, "%s/.ref-%ld.tmp", storage, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return ctts_err(err, err_len, CTTS_E_IO, "cannot write %s: %s", tmp, strerror(errno));
    int ok = fputs(commit, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, p) != 0) {
        unlink(tmp);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot write %s", p);
    }
    return CTTS_OK;
}

/* snapshots/<commit>/<filename> -> ../../blobs/<etag> (one more "../" per
 * directory level of filename), as huggingface_hub's relative links. */
static ctts_status link_pointer(const char *pointer, const char *filename, const char *etag,
                                char *err, size_t err_len) {
    char target[HPATH];
    size_t o = 0;
    int depth = 2;
    for (const char *c = filename; *c; c++) depth += *c == '/';
    for (int i = 0; i < depth; i++) o += (size_t)snprintf(target + o, sizeof target - o, "../");
    snprintf(target + o, sizeof target - o, "blobs/%s", etag);
    ctts_status st = mkdirs_for(pointer, err, err_len);
    if (st != CTTS_OK) return st;
    unlink(pointer); /* a dangling or stale link */
    if (symlink(target, pointer) != 0 && errno != EEXIST)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot create link %s: %s", pointer,
                        strerror(errno));
    if (!is_file(pointer, NULL))
        return ctts_err(err, err_len, CTTS_E_IO, "link %s does not reach its blob", pointer);
    return CTTS_OK;
}

/* ---- HTTP ---- */

typedef struct {
    long status;
    char etag[160], linked_etag[160], commit[96];
    char location[URL_MAX];
    char content_range[96];
    int64_t content_length, linked_size;
} http_meta;

typedef struct {
    const ctts_hub_params *hp;
    const char *what; /* shown by the progress callback */
    int fd;           /* body destination; -1 = discard */
    int64_t offset;   /* bytes in the file when the request started */
    int64_t received; /* body bytes written by this request */
    int64_t total;    /* expected full size, -1 unknown */
    int started, cancelled, write_errno, range_mismatch;
    http_meta m;
} xfer;

static void meta_reset(http_meta *m) {
    memset(m, 0, sizeof *m);
    m->content_length = m->linked_size = -1;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
    xfer *x = user;
    size_t len = size * nitems;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new response (redirect chains) */
        meta_reset(&x->m);
        const char *sp = memchr(buf, ' ', len);
        if (sp) x->m.status = strtol(sp + 1, NULL, 10);
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t vlen = (size_t)(end - v);
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(buf, name, nlen) == 0)
    if (IS("etag")) copy_value(x->m.etag, sizeof x->m.etag, v, vlen);
    else if (IS("x-linked-etag")) copy_value(x->m.linked_etag, sizeof x->m.linked_etag, v, vlen);
    else if (IS("x-repo-commit")) copy_value(x->m.commit, sizeof x->m.commit, v, vlen);
    else if (IS("location")) copy_value(x->m.location, sizeof x->m.location, v, vlen);
    else if (IS("content-range"))
        copy_value(x->m.content_range, sizeof x->m.content_range, v, vlen);
    else if (IS("content-length") || IS("x-linked-size")) {
        char num[32];
        copy_value(num, sizeof num, v, vlen);
        char *e;
        long long n = strtoll(num, &e, 10);
        if (e != num && *e == 0 && n >= 0) {
            if (IS("content-length")) x->m.content_length = n;
            else x->m.linked_size = n;
        }
    }
#undef IS
    return len;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *user) {
    xfer *x = user;
    size_t len = size * nitems;
    if (x->fd < 0 || (x->m.status != 200 && x->m.status != 206)) return len; /* discarded */
    if (!x->started) {
        x->started = 1;
        if (x->m.status == 200 && x->offset > 0) {
            /* The server ignored our Range: start again from byte 0. */
            if (ftruncate(x->fd, 0) != 0) {
                x->write_errno = errno;
                return 0;
            }
            x->offset = 0;
        }
        if (x->m.status == 206) {
            long long a = -1;
            if (sscanf(x->m.content_range, "bytes %lld-", &a) != 1 || a != x->offset) {
                x->range_mismatch = 1;
                return 0;
            }
        }
    }
    for (size_t o = 0; o < len;) {
        ssize_t w = write(x->fd, buf + o, len - o);
        if (w < 0) {
            if (errno == EINTR) continue;
            x->write_errno = errno;
            return 0;
        }
        o += (size_t)w;
    }
    x->received += (int64_t)len;
    if (x->hp->progress &&
        x->hp->progress(x->what, x->offset + x->received, x->total, x->hp->progress_user)) {
        x->cancelled = 1;
        return 0;
    }
    return len;
}

static const char *endpoint_of(const ctts_hub_params *hp) {
    return hp->endpoint && *hp->endpoint ? hp->endpoint : DEFAULT_ENDPOINT;
}

/* Length of "scheme://host[:port]" at the start of url. */
static size_t origin_len(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return 0;
    p += 3;
    size_t n = strcspn(p, "/?#");
    return (size_t)(p - url) + n;
}

static int same_origin(const char *a, const char *b) {
    size_t n = origin_len(a);
    return n && n == origin_len(b) && strncasecmp(a, b, n) == 0;
}

/* Percent-encodes s: unreserved characters stay, '/' stays when keep_slash. */
static int quote(char *out, size_t cap, const char *s, int keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                   *p == '~' || (keep_slash && *p == '/');
        if (o + 4 >= cap) return -1;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

typedef enum { NET_OK, NET_RETRY, NET_UNREACHABLE, NET_FATAL } net_class;

static net_class classify(CURLcode rc) {
    switch (rc) {
    case CURLE_OK: return NET_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return NET_UNREACHABLE;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return NET_RETRY;
    default: return NET_FATAL;
    }
}

static void backoff(int attempt) {
    long ms = 500L << (attempt < 4 ? attempt : 4);
    if (ms > 8000) ms = 8000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* libcurl's process-wide init, once (read-only afterwards; older libcurl
 * versions need it called before any thread uses curl_easy_init). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* One request. fd >= 0: GET into fd from offset (Range); fd < 0: HEAD. */
static CURLcode perform(const ctts_hub_params *hp, const char *url, int auth, xfer *x,
                        char errbuf[CURL_ERROR_SIZE]) {
    pthread_once(&curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(errbuf, CURL_ERROR_SIZE, "cannot start libcurl");
        return CURLE_FAILED_INIT;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Accept-Encoding: identity");
    char line[1200];
    if (auth && hp->token && *hp->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", hp->token);
        h = curl_slist_append(h, line);
    }
    char range[64];
    if (x->fd >= 0 && x->offset > 0) {
        snprintf(range, sizeof range, "%lld-", (long long)x->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    errbuf[0] = 0;
    meta_reset(&x->m);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ctts/" "0.1");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    long connect_ms = hp->connect_timeout_ms > 0 ? hp->connect_timeout_ms : 10000;
    long stall_s = hp->stall_timeout_s > 0 ? hp->stall_timeout_s : 30;
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s);
    if (x->fd < 0) {
        /* Metadata only; redirects are inspected, not followed (the Location of an
         * LFS file is where the GET goes). */
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, connect_ms + stall_s * 1000);
    } else {
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !errbuf[0]) snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

static ctts_status http_error(long status, const char *uri, const ctts_hub_params *hp, char *err,
                              size_t err_len) {
    if (status == 401 || status == 403)
        return ctts_err(err, err_len, CTTS_E_IO,
                        "%s: access refused by %s (HTTP %ld): gated, private or missing repo? %s", uri,
                        endpoint_of(hp), status,
                        hp->token && *hp->token
                            ? "the token was sent: accept the repo's conditions on its page"
                            : "set HF_TOKEN or log in with `hf auth login`");
    if (status == 404)
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "%s: not found on %s (HTTP 404: no such repo, revision or file)", uri,
                        endpoint_of(hp));
    return ctts_err(err, err_len, CTTS_E_IO, "%s: %s answered HTTP %ld", uri, endpoint_of(hp),
                    status);
}

typedef struct {
    char commit[96];
    char etag[160];
    char location[URL_MAX];
    int64_t size;
} file_meta;

/* HEAD with retries (timeouts, cut answers, 5xx, 429; not refused
 * connections, which mean offline) and relative redirects. */
static ctts_status head_meta(const ctts_hub_params *hp, const char *url0, const char *uri,
                             file_meta *fm, char *err, size_t err_len) {
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s", url0);
    char errbuf[CURL_ERROR_SIZE];
    xfer x = {.hp = hp, .what = uri, .fd = -1, .total = -1};
    int attempts = 1 + (hp->retries > 0 ? hp->retries : 0);
    for (int redirects = 0;; redirects++) {
        CURLcode rc = CURLE_OK;
        for (int a = 0; a < attempts; a++) {
            if (a) backoff(a - 1);
            rc = perform(hp, url, same_origin(url, endpoint_of(hp)), &x, errbuf);
            net_class k = classify(rc);
            if (k == NET_UNREACHABLE)
                return ctts_err(err, err_len, CTTS_E_IO, "%s: cannot reach %s: %s", uri,
                                endpoint_of(hp), errbuf);
            if (k == NET_FATAL)
                return ctts_err(err, err_len, CTTS_E_IO, "%s: %s", uri, errbuf);
            if (k == NET_OK && x.m.status < 500 && x.m.status != 429) break;
        }
        if (rc != CURLE_OK)
            return ctts_err(err, err_len, CTTS_E_IO, "%s: no answer from %s after %d attempts: %s",
                            uri, endpoint_of(hp), attempts, errbuf);
        if (x.m.status >= 300 && x.m.status < 400 && x.m.location[0] == '/' &&
            x.m.location[1] != '/') {
            /* A renamed repo: same host, new path. */
            if (redirects >= MAX_REDIRECTS)
                return ctts_err(err, err_len, CTTS_E_IO, "%s: too many redirects", uri);
            size_t o = origin_len(url);
            char next[URL_MAX];
            if (snprintf(next, sizeof next, "%.*s%s", (int)o, url, x.m.location) >=
                (int)sizeof next)
                return ctts_err(err, err_len, CTTS_E_IO, "%s: redirect too long", uri);
            snprintf(url, sizeof url, "%s", next);
            continue;
        }
        break;
    }
    long s = x.m.status;
    if (s < 200 || s >= 400) return http_error(s, uri, hp, err, err_len);
    snprintf(fm->commit, sizeof fm->commit, "%s", x.m.commit);
    const char *etag = x.m.linked_etag[0] ? x.m.linked_etag : x.m.etag;
    if (strncmp(etag, "W/", 2) == 0) etag += 2;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    snprintf(fm->etag, sizeof fm->etag, "%.*s", (int)n, etag);
    fm->size = x.m.linked_size >= 0 ? x.m.linked_size : x.m.content_length;
    if (s >= 300) {
        if (!x.m.location[0])
            return ctts_err(err, err_len, CTTS_E_IO, "%s: redirect without a Location", uri);
        snprintf(fm->location, sizeof fm->location, "%s", x.m.location);
    } else {
        snprintf(fm->location, sizeof fm->location, "%s", url);
    }
    if (!fm->commit[0])
        return ctts_err(err, err_len, CTTS_E_IO,
                        "%s: %s is not a Hugging Face hub (no X-Repo-Commit header)", uri,
                        endpoint_of(hp));
    if (!safe_name(fm->commit, 64))
        return ctts_err(err, err_len, CTTS_E_IO, "%s: invalid commit '%s' from the hub", uri,
                        fm->commit);
    if (!fm->etag[0] || !safe_name(fm->etag, 128))
        return ctts_err(err, err_len, CTTS_E_IO, "%s: missing or invalid ETag '%s' from the hub",
                        uri, fm->etag);
    return CTTS_OK;
}

/* GETs url into `incomplete`, resuming what it holds. */
static ctts_status download(const ctts_hub_params *hp, const char *url, int auth,
                            const char *incomplete, int64_t expected, const char *uri,
                            const char *what, char *err, size_t err_len) {
    int attempts = 1 + (hp->retries > 0 ? hp->retries : 0);
    char errbuf[CURL_ERROR_SIZE];
    char why[CURL_ERROR_SIZE + 64] = "";
    for (int a = 0; a < attempts; a++) {
        if (a) backoff(a - 1);
        int fd = open(incomplete, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return ctts_err(err, err_len, CTTS_E_IO, "cannot write %s: %s", incomplete,
                            strerror(errno));
        struct stat sb;
        int64_t have = fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : 0;
        if (expected >= 0 && have > expected) {
            if (ftruncate(fd, 0) != 0) have = -1;
            else have = 0;
        }
        if (have < 0) {
            close(fd);
            return ctts_err(err, err_len, CTTS_E_IO, "cannot truncate %s", incomplete);
        }
        if (expected >= 0 && have == expected && have > 0) {
            close(fd);
            return CTTS_OK; /* complete already; verified by the caller */
        }
        xfer x = {.hp = hp, .what = what, .fd = fd, .offset = have, .total = expected};
        CURLcode rc = perform(hp, url, auth, &x, errbuf);
        close(fd);
        if (x.cancelled)
            return ctts_err(err, err_len, CTTS_E_CANCELLED, "%s: download cancelled", uri);
        if (x.write_errno)
            return ctts_err(err, err_len, CTTS_E_IO, "cannot write %s: %s", incomplete,
                            strerror(x.write_errno));
        long s = x.m.status;
        int64_t now = 0;
        is_file(incomplete, &now);
        if (rc == CURLE_OK && (s == 200 || s == 206)) {
            if (expected < 0 || now == expected) return CTTS_OK;
            snprintf(why, sizeof why, "got %lld of %lld bytes", (long long)now,
                     (long long)expected);
            continue;
        }
        if (rc == CURLE_OK && s == 416) {
            if (expected >= 0 && now == expected) return CTTS_OK;
            if (truncate(incomplete, 0) != 0) {}
            snprintf(why, sizeof why, "HTTP 416 for a resumed download (restarting)");
            continue;
        }
        if (x.range_mismatch) {
            if (truncate(incomplete, 0) != 0) {}
            snprintf(why, sizeof why, "the server resumed at the wrong offset (restarting)");
            continue;
        }
        if (rc == CURLE_OK && (s == 401 || s == 403 || s == 404))
            return http_error(s, uri, hp, err, err_len);
        net_class k = classify(rc);
        if (rc == CURLE_OK && s < 500 && s != 429)
            return http_error(s, uri, hp, err, err_len);
        if (k == NET_FATAL) return ctts_err(err, err_len, CTTS_E_IO, "%s: %s", uri, errbuf);
        if (rc != CURLE_OK)
            snprintf(why, sizeof why, "%s", errbuf);
        else
            snprintf(why, sizeof why, "HTTP %ld", s);
    }
    return ctts_err(err, err_len, CTTS_E_IO,
                    "%s: download failed after %d attempts (%s); the partial file %s is kept "
                    "and the next run resumes it", uri, attempts, why, incomplete);
}

/* Size, then SHA-256 (64-hex etag, LFS) or git blob SHA-1 (40-hex etag). */
static ctts_status verify(const char *path, const char *etag, int64_t expected, const char *uri,
                          char *err, size_t err_len) {
    int64_t size = 0;
    if (!is_file(path, &size))
        return ctts_err(err, err_len, CTTS_E_IO, "%s: %s vanished", uri, path);
    if (expected >= 0 && size != expected) {
        unlink(path);
        return ctts_err(err, err_len, CTTS_E_IO,
                        "%s: downloaded %lld bytes, the hub announced %lld (file removed)", uri,
                        (long long)size, (long long)expected);
    }
    int sha256 = is_hex(etag, 64), sha1 = is_hex(etag, 40);
    if (!sha256 && !sha1) return CTTS_OK; /* an etag that is not a content hash */
    FILE *f = fopen(path, "rb");
    if (!f) return ctts_err(err, err_len, CTTS_E_IO, "cannot read %s: %s", path, strerror(errno));
    ctts_sha256 h256;
    ctts_sha1 h1;
    ctts_sha256_init(&h256);
    ctts_sha1_init(&h1);
    if (sha1) {
        char hdr[48];
        int n = snprintf(hdr, sizeof hdr, "blob %lld", (long long)size);
        ctts_sha1_update(&h1, hdr, (size_t)n + 1); /* with its NUL */
    }
    enum { BUF = 1 << 16 };
    unsigned char *buf = malloc(BUF);
    if (!buf) {
        fclose(f);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    size_t n;
    while ((n = fread(buf, 1, BUF, f)) > 0) {
        if (sha256) ctts_sha256_update(&h256, buf, n);
        else ctts_sha1_update(&h1, buf, n);
    }
    int rerr = ferror(f);
    fclose(f);
    free(buf);
    if (rerr) return ctts_err(err, err_len, CTTS_E_IO, "cannot read %s", path);
    unsigned char d[32];
    char hex[65];
    if (sha256) {
        ctts_sha256_final(&h256, d);
        ctts_hex(d, 32, hex);
    } else {
        ctts_sha1_final(&h1, d);
        ctts_hex(d, 20, hex);
    }
    if (strcmp(hex, etag) != 0) {
        unlink(path);
        return ctts_err(err, err_len, CTTS_E_IO,
                        "%s: checksum mismatch (%s expected %s, got %s); the download was "
                        "removed, run again to fetch it anew", uri, sha256 ? "sha256" : "git sha1",
                        etag, hex);
    }
    return CTTS_OK;
}

/* The snapshot file for revision (a commit, or a ref resolved through refs/). */
static int cached_pointer(const char *storage, const hf_uri *u, char *out, size_t cap) {
    char commit[64];
    if (is_commit(u->revision))
        snprintf(commit, sizeof commit, "%s", u->revision);
    else if (read_ref(storage, u->revision, commit) != 0)
        return 0;
    if (snprintf(out, cap, "%s/snapshots/%s/%s", storage, commit, u->filename) >= (int)cap)
        return 0;
    return is_file(out, NULL);
}

/* Downloads (under the blob's lock) and links the pointer. */
static ctts_status fetch_locked(const ctts_hub_params *hp, const hf_uri *u, const char *uri,
                                const char *storage, const file_meta *fm, const char *pointer,
                                char *err, size_t err_len) {
    const char *cache = hp->cache_dir;
    char lock[HPATH], blob[HPATH], incomplete[HPATH];
    const char *folder = strrchr(storage, '/') + 1;
    ctts_status st = pathf(lock, sizeof lock, err, err_len, "%s/.locks/%s/%s.lock", cache, folder,
                           fm->etag);
    if (st == CTTS_OK) st = pathf(blob, sizeof blob, err, err_len, "%s/blobs/%s", storage, fm->etag);
    if (st == CTTS_OK)
        st = pathf(incomplete, sizeof incomplete, err, err_len, "%s.incomplete", blob);
    if (st == CTTS_OK) st = mkdirs_for(lock, err, err_len);
    if (st == CTTS_OK) st = mkdirs_for(blob, err, err_len);
    if (st != CTTS_OK) return st;
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lfd < 0)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot open lock %s: %s", lock, strerror(errno));
    while (flock(lfd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(lfd);
            return ctts_err(err, err_len, CTTS_E_IO, "cannot lock %s: %s", lock, strerror(errno));
        }
    }
    if (is_file(pointer, NULL)) { /* another process finished it meanwhile */
        close(lfd);
        return CTTS_OK;
    }
    int64_t bsize = -1;
    if (is_file(blob, &bsize) && fm->size >= 0 && bsize != fm->size) unlink(blob); /* damaged */
    if (!is_file(blob, NULL)) {
        const char *what = strrchr(u->filename, '/') ? strrchr(u->filename, '/') + 1 : u->filename;
        int auth = same_origin(fm->location, endpoint_of(hp));
        st = download(hp, fm->location, auth, incomplete, fm->size, uri, what, err, err_len);
        if (st == CTTS_OK) st = verify(incomplete, fm->etag, fm->size, uri, err, err_len);
        if (st == CTTS_OK && rename(incomplete, blob) != 0)
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot rename %s: %s", incomplete,
                          strerror(errno));
    }
    if (st == CTTS_OK) st = link_pointer(pointer, u->filename, fm->etag, err, err_len);
    close(lfd);
    return st;
}

ctts_status hf_fetch(const ctts_hub_params *hp, const char *uri, char *path, size_t path_len,
                     char *err, size_t err_len) {
    if (!uri) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no path given");
    if (!hf_is_uri(uri)) return copy_out(uri, path, path_len, err, err_len);
    hf_uri u;
    ctts_status st = hf_parse_uri(uri, &u, err, err_len);
    if (st != CTTS_OK) return st;
    if (!hp || !hp->cache_dir || !*hp->cache_dir)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "%s needs the Hugging Face cache directory (ctts_hub_params.cache_dir; "
                        "the ctts CLI uses HF_HUB_CACHE, HF_HOME or ~/.cache/huggingface/hub)",
                        uri);
    char storage[HPATH], pointer[HPATH], folder[300];
    snprintf(folder, sizeof folder, "models--%s", u.repo_id);
    char *slash = strchr(folder, '/');
    if (slash) {
        memmove(slash + 2, slash + 1, strlen(slash + 1) + 1);
        slash[0] = slash[1] = '-';
    }
    st = pathf(storage, sizeof storage, err, err_len, "%s/%s", hp->cache_dir, folder);
    if (st != CTTS_OK) return st;
    /* 1. A pinned commit in the cache: no request at all. */
    if (is_commit(u.revision) && cached_pointer(storage, &u, pointer, sizeof pointer))
        return copy_out(pointer, path, path_len, err, err_len);
    /* 2. Offline: the cache or nothing. */
    if (hp->offline) {
        if (cached_pointer(storage, &u, pointer, sizeof pointer))
            return copy_out(pointer, path, path_len, err, err_len);
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "%s is not in the hub cache %s and offline mode is on (--offline or "
                        "HF_HUB_OFFLINE)", uri, hp->cache_dir);
    }
    /* 3. Metadata. */
    char qfile[3 * 1024 + 4], qrev[3 * 256 + 4], url[URL_MAX];
    if (quote(qfile, sizeof qfile, u.filename, 1) || quote(qrev, sizeof qrev, u.revision, 0))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: path too long", uri);
    const char *ep = endpoint_of(hp);
    size_t eplen = strlen(ep);
    while (eplen && ep[eplen - 1] == '/') eplen--;
    st = pathf(url, sizeof url, err, err_len, "%.*s/%s/resolve/%s/%s", (int)eplen, ep, u.repo_id,
               qrev, qfile);
    if (st != CTTS_OK) return st;
    file_meta fm;
    memset(&fm, 0, sizeof fm);
    st = head_meta(hp, url, uri, &fm, err, err_len);
    if (st != CTTS_OK) {
        /* As huggingface_hub: a hub that cannot answer (down, refused, 5xx) still
         * lets a cached ref serve; a 404 is final. */
        if (st != CTTS_E_NOT_FOUND && st != CTTS_E_CANCELLED &&
            cached_pointer(storage, &u, pointer, sizeof pointer))
            return copy_out(pointer, path, path_len, err, err_len);
        return st;
    }
    /* 4. Refs, pointer, blob. */
    if (strcmp(u.revision, fm.commit) != 0) {
        st = write_ref(storage, u.revision, fm.commit, err, err_len);
        if (st != CTTS_OK) return st;
    }
    st = pathf(pointer, sizeof pointer, err, err_len, "%s/snapshots/%s/%s", storage, fm.commit,
               u.filename);
    if (st != CTTS_OK) return st;
    if (!is_file(pointer, NULL)) {
        st = fetch_locked(hp, &u, uri, storage, &fm, pointer, err, err_len);
        if (st != CTTS_OK) return st;
    }
    return copy_out(pointer, path, path_len, err, err_len);
}
