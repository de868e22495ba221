/*
 * Hugging Face hub downloads against a fake hub served by a thread of this
 * program on 127.0.0.1 (an ephemeral port; loopback only, one connection at
 * a time, every loop bounded, the thread stops when the test does).
 *
 * The fake hub answers like huggingface.co: HEAD/GET /<org>/<repo>/resolve/
 * <revision>/<path> with X-Repo-Commit and ETag; LFS files get a 302 to
 * /cdn/<sha256> with X-Linked-Etag / X-Linked-Size; renamed repos a relative
 * 307; gated repos 401/403 without the right token; Range requests 206. It
 * can inject faults: HTTP errors for the next N requests, a body cut after
 * half, a body that stalls, a flipped byte (wrong checksum), Range ignored.
 *
 * Checked: hash vectors, hf:// parsing, the cache layout Python reads
 * (blobs/<etag>, relative snapshot links, refs), no request for a cached
 * pinned file, a Python-made cache used as is, resume after a cut, retries,
 * each failure's message and that no partial file is ever taken as complete,
 * offline mode, concurrent fetches sharing one download, the listing, the
 * official fallback to the weights without voice cloning, the catalog, the
 * golden tiny model served by the hub giving the same audio as from disk,
 * and the CLI (pull, models, generate) driven through HF_* variables.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "base/sha1.h"
#include "base/sha256.h"
#include "ctts.h"
#include "io/hf.h"

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define C3 "3333333333333333333333333333333333333333"

/* ---- temp dirs ---- */

static char root_dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory under the test's root. */
static const char *tmp_dir(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    if (!root_dir[0]) {
        snprintf(root_dir, sizeof root_dir, "/tmp/ctts_test_hf_XXXXXX");
        if (!mkdtemp(root_dir)) abort();
    }
    snprintf(buf[k], sizeof buf[k], "%s/%s", root_dir, name);
    rm_rf(buf[k]);
    mkdir(buf[k], 0777);
    return buf[k];
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* Number of entries in dir whose name ends with suffix. */
static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t a = strlen(e->d_name), b = strlen(suffix);
        if (a >= b && strcmp(e->d_name + a - b, suffix) == 0 && e->d_name[0] != '.') n++;
    }
    closedir(d);
    return n;
}

static const char *golden(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    char r[400];
    if (!realpath(test_golden_dir(), r)) snprintf(r, sizeof r, "%s", test_golden_dir());
    snprintf(buf[k], sizeof buf[k], "%s/pocket-tiny/%s", r, rel);
    return buf[k];
}

/* ---- the fake hub ---- */

#define MAX_FILES 16

typedef struct {
    char repo[96], path[256], commit[41], branch[32];
    unsigned char *data;
    size_t len;
    int lfs;
    char etag[65]; /* sha256 (lfs) or git blob sha1 */
} hub_file;

typedef struct {
    int fd, port;
    pthread_t th;
    atomic_int stop;
    hub_file files[MAX_FILES];
    int n_files;
    char gated_repo[96], token[64];    /* 401 without a token, 403 with another */
    char renamed_from[96], renamed_to[96];
    atomic_int n_req, n_head, n_get;
    atomic_int fail_status, fail_count; /* answer fail_status to the next fail_count requests */
    atomic_int fail_only_get;           /* ... counting GETs only */
    atomic_int truncate_count;          /* the next N bodies stop after half */
    atomic_int slow_count;              /* the next N bodies stall after half */
    atomic_int corrupt;                 /* bodies carry a flipped byte */
    atomic_int ignore_range;
    atomic_int last_range_start;        /* -1 when the last GET had no Range */
} fakehub;

static void hub_add(fakehub *h, const char *repo, const char *path, const char *commit,
                    const char *branch, const void *data, size_t len, int lfs) {
    hub_file *f = &h->files[h->n_files++];
    snprintf(f->repo, sizeof f->repo, "%s", repo);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->commit, sizeof f->commit, "%s", commit);
    snprintf(f->branch, sizeof f->branch, "%s", branch ? branch : "");
    f->data = malloc(len ? len : 1);
    memcpy(f->data, data, len);
    f->len = len;
    f->lfs = lfs;
    unsigned char d[32];
    if (lfs) {
        ctts_sha256_buf(data, len, d);
        ctts_hex(d, 32, f->etag);
    } else {
        ctts_sha1 s;
        ctts_sha1_init(&s);
        char hdr[48];
        int n = snprintf(hdr, sizeof hdr, "blob %zu", len);
        ctts_sha1_update(&s, hdr, (size_t)n + 1);
        ctts_sha1_update(&s, data, len);
        ctts_sha1_final(&s, d);
        ctts_hex(d, 20, f->etag);
    }
}

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sendf(int fd, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) send_all(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void pct_decode(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && p[1] && p[2]) {
            char hx[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hx, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

/* Waits (bounded) until the client closes the connection. */
static void wait_client_gone(fakehub *h, int fd) {
    for (int i = 0; i < 100 && !atomic_load(&h->stop); i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            char b[256];
            if (recv(fd, b, sizeof b, 0) <= 0) return;
        }
    }
}

static void send_body(fakehub *h, int fd, const hub_file *f, int head, long range) {
    size_t start = 0;
    if (range >= 0 && !atomic_load(&h->ignore_range) && (size_t)range <= f->len) start = (size_t)range;
    size_t n = f->len - start;
    if (start)
        sendf(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %zu-%zu/%zu\r\n", start,
              f->len - 1, f->len);
    else
        sendf(fd, "HTTP/1.1 200 OK\r\n");
    sendf(fd, "Content-Length: %zu\r\nETag: \"%s\"\r\nX-Repo-Commit: %s\r\nConnection: close\r\n\r\n",
          n, f->etag, f->commit);
    if (head) return;
    unsigned char *body = malloc(n ? n : 1);
    memcpy(body, f->data + start, n);
    if (atomic_load(&h->corrupt) && n) body[n / 2] ^= 0x5a;
    if (atomic_load(&h->truncate_count) > 0) {
        atomic_fetch_sub(&h->truncate_count, 1);
        send_all(fd, body, n / 2);
    } else if (atomic_load(&h->slow_count) > 0) {
        atomic_fetch_sub(&h->slow_count, 1);
        send_all(fd, body, n / 2);
        wait_client_gone(h, fd);
    } else {
        send_all(fd, body, n);
    }
    free(body);
}

static const hub_file *find_file(fakehub *h, const char *repo, const char *rev, const char *path) {
    for (int i = 0; i < h->n_files; i++) {
        const hub_file *f = &h->files[i];
        if (strcmp(f->repo, repo) == 0 && strcmp(f->path, path) == 0 &&
            (strcmp(f->commit, rev) == 0 || (f->branch[0] && strcmp(f->branch, rev) == 0)))
            return f;
    }
    return NULL;
}

static void serve_one(fakehub *h, int fd) {
    char req[16384];
    size_t n = 0;
    while (n < sizeof req - 1) { /* the request head, bounded in size and time */
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) return;
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0) return;
        n += (size_t)r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char method[16], target[4096];
    if (sscanf(req, "%15s %4095s", method, target) != 2) return;
    int head = strcmp(method, "HEAD") == 0;
    atomic_fetch_add(&h->n_req, 1);
    atomic_fetch_add(head ? &h->n_head : &h->n_get, 1);
    long range = -1;
    const char *rg = strcasestr(req, "\r\nRange: bytes=");
    if (rg) range = strtol(rg + 15, NULL, 10);
    if (!head) atomic_store(&h->last_range_start, (int)range);
    char auth[256] = "";
    const char *au = strcasestr(req, "\r\nAuthorization: Bearer ");
    if (au) sscanf(au + 24, "%255[^\r\n]", auth);
    if (atomic_load(&h->fail_count) > 0 && (!head || !atomic_load(&h->fail_only_get))) {
        atomic_fetch_sub(&h->fail_count, 1);
        sendf(fd, "HTTP/1.1 %d Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
              atomic_load(&h->fail_status));
        return;
    }
    if (strncmp(target, "/cdn/", 5) == 0) {
        for (int i = 0; i < h->n_files; i++)
            if (h->files[i].lfs && strcmp(h->files[i].etag, target + 5) == 0) {
                send_body(h, fd, &h->files[i], head, range);
                return;
            }
        sendf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    /* /<org>/<repo>/resolve/<rev>/<path> */
    char org[96], name[96], rev[256], path[2048];
    if (sscanf(target, "/%95[^/]/%95[^/]/resolve/%255[^/]/%2047s", org, name, rev, path) != 4) {
        sendf(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    pct_decode(rev);
    pct_decode(path);
    char repo[200];
    snprintf(repo, sizeof repo, "%s/%s", org, name);
    if (h->renamed_from[0] && strcmp(repo, h->renamed_from) == 0) {
        sendf(fd, "HTTP/1.1 307 Temporary Redirect\r\nLocation: /%s/resolve/%s/%s\r\n"
                  "Content-Length: 0\r\nConnection: close\r\n\r\n", h->renamed_to, rev, path);
        return;
    }
    if (h->gated_repo[0] && strcmp(repo, h->gated_repo) == 0 && strcmp(auth, h->token) != 0) {
        sendf(fd, "HTTP/1.1 %d Refused\r\nX-Error-Code: GatedRepo\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n", auth[0] ? 403 : 401);
        return;
    }
    const hub_file *f = find_file(h, repo, rev, path);
    if (!f) {
        sendf(fd, "HTTP/1.1 404 Not Found\r\nX-Error-Code: EntryNotFound\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n");
        return;
    }
    if (f->lfs) {
        sendf(fd, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/cdn/%s\r\n"
                  "X-Repo-Commit: %s\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %zu\r\n"
                  "ETag: \"redirect-etag\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
              h->port, f->etag, f->commit, f->etag, f->len);
        return;
    }
    send_body(h, fd, f, head, range);
}

static void *hub_main(void *arg) {
    fakehub *h = arg;
    for (int ticks = 0; ticks < 3000 && !atomic_load(&h->stop); ticks++) { /* <= 5 min */
        struct pollfd p = {h->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        int c = accept(h->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(h, c);
        close(c);
    }
    return NULL;
}

static fakehub *hub_start(void) {
    fakehub *h = calloc(1, sizeof *h);
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(h->fd, 16) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&a, &al) != 0)
        abort();
    h->port = ntohs(a.sin_port);
    atomic_init(&h->last_range_start, -1);
    pthread_create(&h->th, NULL, hub_main, h);
    return h;
}

static void hub_stop(fakehub *h) {
    if (!h) return;
    atomic_store(&h->stop, 1);
    pthread_join(h->th, NULL);
    close(h->fd);
    for (int i = 0; i < h->n_files; i++) free(h->files[i].data);
    free(h);
}

static char endpoint_buf[64];

static ctts_hub_params hub_params(const fakehub *h, const char *cache) {
    ctts_hub_params p = ctts_hub_default_params();
    snprintf(endpoint_buf, sizeof endpoint_buf, "http://127.0.0.1:%d", h ? h->port : 1);
    p.endpoint = endpoint_buf;
    p.cache_dir = cache;
    p.retries = 0;
    p.stall_timeout_s = 2;
    p.connect_timeout_ms = 2000;
    return p;
}

/* Deterministic pseudo-random bytes. */
static unsigned char *make_data(size_t n, unsigned seed) {
    unsigned char *b = malloc(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

#define BIG 300000

/* ---- tests ---- */

static void test_hash_vectors(void) {
    unsigned char d[32];
    char hex[65];
    ctts_sha1 s;
    ctts_sha1_init(&s);
    ctts_sha1_update(&s, "abc", 3);
    ctts_sha1_final(&s, d);
    ctts_hex(d, 20, hex);
    CHECK(strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    ctts_sha1_init(&s);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t i = 0; i < strlen(m); i++) ctts_sha1_update(&s, m + i, 1); /* byte by byte */
    ctts_sha1_final(&s, d);
    ctts_hex(d, 20, hex);
    CHECK(strcmp(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") == 0);
    /* git hash-object of "hello\n" */
    ctts_sha1_init(&s);
    ctts_sha1_update(&s, "blob 6", 7);
    ctts_sha1_update(&s, "hello\n", 6);
    ctts_sha1_final(&s, d);
    ctts_hex(d, 20, hex);
    CHECK(strcmp(hex, "ce013625030ba8dba906f756967f9e9ca394464a") == 0);
    ctts_sha256_buf("abc", 3, d);
    ctts_hex(d, 32, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

static void test_parse_uri(void) {
    hf_uri u;
    char err[256];
    REQUIRE(hf_parse_uri("hf://kyutai/pocket-tts/languages/english/model.safetensors@39592ff",
                         &u, err, sizeof err) == CTTS_OK);
    CHECK(strcmp(u.repo_id, "kyutai/pocket-tts") == 0);
    CHECK(strcmp(u.filename, "languages/english/model.safetensors") == 0);
    CHECK(strcmp(u.revision, "39592ff") == 0);
    REQUIRE(hf_parse_uri("hf://a/b/c.txt", &u, err, sizeof err) == CTTS_OK);
    CHECK(strcmp(u.revision, "main") == 0);
    const char *bad[] = {"hf://a/b", "hf://a/b/", "hf://a//c", "hf://a/b/../x", "hf://a/b/x/./y",
                         "hf://a--x/b/c", "hf://a/b/c@r1@r2", "hf://a/b/c@../../x", "hf://../b/c",
                         "hf://a/b/c/", "hf://a/b/c@", "hf://a b/c/d", "http://a/b/c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (hf_parse_uri(bad[i], &u, err, sizeof err) == CTTS_OK)
            TEST_FAIL_AT("'%s' was accepted", bad[i]);
        else
            CHECK(err[0] != 0);
    }
}

static void test_first_download_layout(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 1);
    const char *small = "{\"hello\": \"config\"}\n";
    hub_add(h, "org/repo", "dir/sub/weights.bin", C1, "main", big, BIG, 1);
    hub_add(h, "org/repo", "config.json", C1, "main", small, strlen(small), 0);
    const char *cache = tmp_dir("first");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/dir/sub/weights.bin", path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    char want[1024];
    snprintf(want, sizeof want, "%s/models--org--repo/snapshots/%s/dir/sub/weights.bin", cache, C1);
    CHECK(strcmp(path, want) == 0);
    size_t n = 0;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    /* The layout huggingface_hub writes and reads. */
    char link[512] = "", blob[1024], ref[1024];
    ssize_t k = readlink(path, link, sizeof link - 1);
    if (k > 0) link[k] = 0;
    char want_link[200];
    snprintf(want_link, sizeof want_link, "../../../../blobs/%s", h->files[0].etag);
    CHECK(strcmp(link, want_link) == 0);
    snprintf(blob, sizeof blob, "%s/models--org--repo/blobs/%s", cache, h->files[0].etag);
    struct stat sb;
    CHECK(lstat(blob, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == BIG);
    snprintf(ref, sizeof ref, "%s/models--org--repo/refs/main", cache);
    got = test_read_file(ref, &n);
    CHECK(got && n == 40 && memcmp(got, C1, 40) == 0); /* no newline, as Python writes it */
    free(got);
    char locks[1024];
    snprintf(locks, sizeof locks, "%s/.locks/models--org--repo", cache);
    CHECK(count_suffix(locks, ".lock") == 1);
    char blobs[1024];
    snprintf(blobs, sizeof blobs, "%s/models--org--repo/blobs", cache);
    CHECK(count_suffix(blobs, ".incomplete") == 0);
    CHECK_EQ_INT(atomic_load(&h->n_head), 1);
    CHECK_EQ_INT(atomic_load(&h->n_get), 1); /* the CDN location, directly */
    /* A plain git file: git-sha1 etag, served without redirect, one level deep. */
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/config.json@" C1, path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    k = readlink(path, link, sizeof link - 1);
    link[k > 0 ? k : 0] = 0;
    snprintf(want_link, sizeof want_link, "../../blobs/%s", h->files[1].etag);
    CHECK(strcmp(link, want_link) == 0);
    got = test_read_file(path, &n);
    CHECK(got && n == strlen(small) && memcmp(got, small, n) == 0);
    free(got);
    /* A local path goes through unchanged. */
    REQUIRE(ctts_hub_fetch(&p, "/some/local/file", path, sizeof path, err, sizeof err) == CTTS_OK);
    CHECK(strcmp(path, "/some/local/file") == 0);
    free(big);
    hub_stop(h);
}

static void test_second_run_no_traffic(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 2);
    hub_add(h, "org/repo", "w.bin", C1, "main", big, BIG, 1);
    const char *cache = tmp_dir("second");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], path2[4096], err[1024];
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    int before = atomic_load(&h->n_req);
    CHECK_EQ_INT(before, 2);
    for (int i = 0; i < 3; i++) {
        REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path2, sizeof path2, err,
                               sizeof err) == CTTS_OK);
        CHECK(strcmp(path, path2) == 0);
    }
    CHECK_EQ_INT(atomic_load(&h->n_req), before); /* pinned + cached: no request */
    /* A branch asks the hub for its commit (one HEAD), never downloads again. */
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin", path2, sizeof path2, err, sizeof err) ==
            CTTS_OK);
    CHECK(strcmp(path, path2) == 0);
    CHECK_EQ_INT(atomic_load(&h->n_head), 2);
    CHECK_EQ_INT(atomic_load(&h->n_get), 1);
    free(big);
    hub_stop(h);
}

/* Writes a file into a cache exactly as huggingface_hub lays it out. */
static void python_cache_file(const char *cache, const char *folder, const char *commit,
                              const char *file, const char *branch, const void *data, size_t n) {
    char p[1024], q[1024];
    unsigned char d[32];
    char etag[65];
    ctts_sha256_buf(data, n, d);
    ctts_hex(d, 32, etag);
    snprintf(p, sizeof p, "%s/%s", cache, folder);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/blobs", cache, folder);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/blobs/%s", cache, folder, etag);
    write_file(p, data, n);
    snprintf(p, sizeof p, "%s/%s/snapshots", cache, folder);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/snapshots/%s", cache, folder, commit);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/snapshots/%s/%s", cache, folder, commit, file);
    snprintf(q, sizeof q, "../../blobs/%s", etag);
    symlink(q, p);
    if (branch) {
        snprintf(p, sizeof p, "%s/%s/refs", cache, folder);
        mkdir(p, 0777);
        snprintf(p, sizeof p, "%s/%s/refs/%s", cache, folder, branch);
        write_file(p, commit, 40);
    }
}

static void test_python_prefilled_cache(void) {
    fakehub *h = hub_start(); /* serves nothing: any request would fail */
    const char *cache = tmp_dir("python");
    const char *data = "weights made by huggingface_hub";
    python_cache_file(cache, "models--org--pyrepo", C2, "model.safetensors", "main", data,
                      strlen(data));
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    REQUIRE(ctts_hub_fetch(&p, "hf://org/pyrepo/model.safetensors@" C2, path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == strlen(data) && memcmp(got, data, n) == 0);
    free(got);
    CHECK_EQ_INT(atomic_load(&h->n_req), 0);
    /* A branch: offline reads refs/main, no request. */
    p.offline = 1;
    REQUIRE(ctts_hub_fetch(&p, "hf://org/pyrepo/model.safetensors", path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    CHECK_EQ_INT(atomic_load(&h->n_req), 0);
    /* Online with the hub answering 404 for the HEAD: the 404 is final. */
    p.offline = 0;
    CHECK(ctts_hub_fetch(&p, "hf://org/pyrepo/model.safetensors", path, sizeof path, err,
                         sizeof err) == CTTS_E_NOT_FOUND);
    /* A hub that is down: the cached ref still serves (huggingface_hub does the same). */
    hub_stop(h);
    p = hub_params(NULL, cache); /* port 1: connection refused */
    REQUIRE(ctts_hub_fetch(&p, "hf://org/pyrepo/model.safetensors", path, sizeof path, err,
                           sizeof err) == CTTS_OK);
}

static void test_resume_after_cut(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 3);
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    const char *cache = tmp_dir("resume");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024], inc[1024], blob[1024];
    snprintf(inc, sizeof inc, "%s/models--org--repo/blobs/%s.incomplete", cache, h->files[0].etag);
    snprintf(blob, sizeof blob, "%s/models--org--repo/blobs/%s", cache, h->files[0].etag);
    atomic_store(&h->truncate_count, 1);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "next run resumes it");
    struct stat sb;
    CHECK(stat(inc, &sb) == 0 && sb.st_size > 0 && sb.st_size < BIG);
    CHECK(!exists(blob));
    char ptr[1024];
    snprintf(ptr, sizeof ptr, "%s/models--org--repo/snapshots/%s/w.bin", cache, C1);
    CHECK(!exists(ptr)); /* nothing a later run could take as complete */
    off_t part = sb.st_size;
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK_EQ_INT(atomic_load(&h->last_range_start), part); /* resumed, not restarted */
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    CHECK(!exists(inc));
    /* Within one call: a cut, then the retry resumes. */
    const char *cache2 = tmp_dir("resume2");
    p = hub_params(h, cache2);
    p.retries = 2;
    atomic_store(&h->truncate_count, 1);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK(atomic_load(&h->last_range_start) > 0);
    got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    /* A server ignoring Range (200 to a resume): the file restarts from 0, stays right. */
    const char *cache3 = tmp_dir("resume3");
    p = hub_params(h, cache3);
    atomic_store(&h->truncate_count, 1);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) != 0);
    atomic_store(&h->ignore_range, 1);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    free(big);
    hub_stop(h);
}

typedef struct {
    int calls, cancel_after;
    int64_t last_done, total;
    int monotonic;
    char what[64];
} progress_log;

static int on_progress(const char *what, int64_t done, int64_t total, void *user) {
    progress_log *l = user;
    if (done < l->last_done) l->monotonic = 0;
    l->last_done = done;
    l->total = total;
    snprintf(l->what, sizeof l->what, "%s", what);
    return ++l->calls == l->cancel_after;
}

static void test_progress_and_cancel(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 10);
    hub_add(h, "org/repo", "dir/w.bin", C1, NULL, big, BIG, 1);
    const char *cache = tmp_dir("progress");
    ctts_hub_params p = hub_params(h, cache);
    progress_log l = {.cancel_after = 2, .monotonic = 1};
    p.progress = on_progress;
    p.progress_user = &l;
    char path[4096], err[1024], ptr[1024];
    snprintf(ptr, sizeof ptr, "%s/models--org--repo/snapshots/%s/dir/w.bin", cache, C1);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/dir/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_CANCELLED);
    CHECK_STR_CONTAINS(err, "cancelled");
    CHECK(!exists(ptr));
    l = (progress_log){.cancel_after = -1, .monotonic = 1};
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/dir/w.bin@" C1, path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    CHECK(l.calls > 0 && l.monotonic);
    CHECK_EQ_INT(l.last_done, BIG);
    CHECK_EQ_INT(l.total, BIG);
    CHECK(strcmp(l.what, "w.bin") == 0);
    free(big);
    hub_stop(h);
}

static void test_gated_401_403(void) {
    fakehub *h = hub_start();
    const char *data = "gated weights";
    hub_add(h, "org/gated", "w.bin", C1, "main", data, strlen(data), 1);
    snprintf(h->gated_repo, sizeof h->gated_repo, "org/gated");
    snprintf(h->token, sizeof h->token, "hf_secret");
    const char *cache = tmp_dir("gated");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    CHECK(ctts_hub_fetch(&p, "hf://org/gated/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "access refused");
    CHECK_STR_CONTAINS(err, "HTTP 401");
    CHECK_STR_CONTAINS(err, "HF_TOKEN");
    CHECK(strchr(err, '\n') == NULL);
    p.token = "hf_wrong";
    CHECK(ctts_hub_fetch(&p, "hf://org/gated/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "HTTP 403");
    CHECK_STR_CONTAINS(err, "the token was sent");
    char blobs[1024];
    snprintf(blobs, sizeof blobs, "%s/models--org--gated/blobs", cache);
    CHECK(!exists(blobs));
    p.token = "hf_secret";
    REQUIRE(ctts_hub_fetch(&p, "hf://org/gated/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    hub_stop(h);
}

static void test_404(void) {
    fakehub *h = hub_start();
    const char *cache = tmp_dir("404");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/missing.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "hf://org/repo/missing.bin");
    CHECK_STR_CONTAINS(err, "HTTP 404");
    char repo[1024];
    snprintf(repo, sizeof repo, "%s/models--org--repo/blobs", cache);
    CHECK(!exists(repo));
    CHECK_EQ_INT(atomic_load(&h->n_req), 1); /* a 404 is not retried */
    hub_stop(h);
}

static void test_500_then_success(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 4);
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    ctts_hub_params p = hub_params(h, tmp_dir("500"));
    p.retries = 3;
    char path[4096], err[1024];
    atomic_store(&h->fail_status, 500);
    atomic_store(&h->fail_count, 2); /* the HEAD fails twice */
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK_EQ_INT(atomic_load(&h->n_head), 3);
    /* The download itself failing with 503 twice, then fine. */
    p = hub_params(h, tmp_dir("503"));
    p.retries = 2;
    atomic_store(&h->fail_status, 503);
    atomic_store(&h->fail_only_get, 1);
    atomic_store(&h->fail_count, 2);
    int gets = atomic_load(&h->n_get);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK_EQ_INT(atomic_load(&h->n_get) - gets, 3);
    atomic_store(&h->fail_only_get, 0);
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    /* Always 500: a clear error after the retries, nothing cached. */
    const char *cache = tmp_dir("500b");
    p = hub_params(h, cache);
    p.retries = 1;
    atomic_store(&h->fail_status, 500);
    atomic_store(&h->fail_count, 100);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "HTTP 500");
    atomic_store(&h->fail_count, 0);
    char blobs[1024];
    snprintf(blobs, sizeof blobs, "%s/models--org--repo/blobs", cache);
    CHECK(!exists(blobs));
    free(big);
    hub_stop(h);
}

static void test_truncated_body(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 5);
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    const char *cache = tmp_dir("trunc");
    ctts_hub_params p = hub_params(h, cache);
    p.retries = 1;
    char path[4096], err[1024];
    atomic_store(&h->truncate_count, 100);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "after 2 attempts");
    char blobs[1024], ptr[1024];
    snprintf(blobs, sizeof blobs, "%s/models--org--repo/blobs", cache);
    snprintf(ptr, sizeof ptr, "%s/models--org--repo/snapshots/%s/w.bin", cache, C1);
    CHECK_EQ_INT(count_suffix(blobs, ".incomplete"), 1);
    CHECK_EQ_INT(count_suffix(blobs, h->files[0].etag), 0); /* no complete blob */
    CHECK(!exists(ptr));
    /* The listing shows the partial download. */
    atomic_store(&h->truncate_count, 0);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    free(big);
    hub_stop(h);
}

static void test_slow_body_times_out(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 6);
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    const char *cache = tmp_dir("slow");
    ctts_hub_params p = hub_params(h, cache);
    p.stall_timeout_s = 1;
    char path[4096], err[1024];
    atomic_store(&h->slow_count, 100);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "download failed");
    char ptr[1024];
    snprintf(ptr, sizeof ptr, "%s/models--org--repo/snapshots/%s/w.bin", cache, C1);
    CHECK(!exists(ptr));
    atomic_store(&h->slow_count, 0);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK(atomic_load(&h->last_range_start) > 0); /* what arrived before the stall is kept */
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    free(big);
    hub_stop(h);
}

static void test_wrong_checksum(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 7);
    const char *small = "plain git file\n";
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    hub_add(h, "org/repo", "small.txt", C1, NULL, small, strlen(small), 0);
    const char *cache = tmp_dir("sum");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024], blobs[1024], ptr[1024];
    snprintf(blobs, sizeof blobs, "%s/models--org--repo/blobs", cache);
    snprintf(ptr, sizeof ptr, "%s/models--org--repo/snapshots/%s/w.bin", cache, C1);
    atomic_store(&h->corrupt, 1);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "checksum mismatch (sha256");
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/small.txt@" C1, path, sizeof path, err, sizeof err) ==
          CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "checksum mismatch (git sha1");
    CHECK_EQ_INT(count_suffix(blobs, ".incomplete"), 0); /* a bad file is not resumed either */
    CHECK_EQ_INT(count_suffix(blobs, h->files[0].etag), 0);
    CHECK(!exists(ptr));
    atomic_store(&h->corrupt, 0);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/w.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    size_t n;
    unsigned char *got = test_read_file(path, &n);
    CHECK(got && n == BIG && memcmp(got, big, BIG) == 0);
    free(got);
    free(big);
    hub_stop(h);
}

static void test_offline(void) {
    fakehub *h = hub_start();
    const char *data = "offline test";
    hub_add(h, "org/repo", "f.bin", C1, "main", data, strlen(data), 1);
    const char *cache = tmp_dir("offline");
    ctts_hub_params p = hub_params(h, cache);
    p.offline = 1;
    char path[4096], err[1024];
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/f.bin", path, sizeof path, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "offline mode is on");
    CHECK_EQ_INT(atomic_load(&h->n_req), 0);
    p.offline = 0;
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/f.bin", path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    int n = atomic_load(&h->n_req);
    p.offline = 1;
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/f.bin", path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/f.bin@" C1, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/f.bin@" C3, path, sizeof path, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_EQ_INT(atomic_load(&h->n_req), n);
    /* No cache directory at all: a clear error, not a crash. */
    p.cache_dir = NULL;
    CHECK(ctts_hub_fetch(&p, "hf://org/repo/f.bin", path, sizeof path, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "HF_HOME");
    hub_stop(h);
}

static void test_relative_redirect(void) {
    fakehub *h = hub_start();
    const char *data = "moved repo";
    hub_add(h, "org/new-name", "f.bin", C1, NULL, data, strlen(data), 0);
    snprintf(h->renamed_from, sizeof h->renamed_from, "org/old-name");
    snprintf(h->renamed_to, sizeof h->renamed_to, "org/new-name");
    const char *cache = tmp_dir("renamed");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    REQUIRE(ctts_hub_fetch(&p, "hf://org/old-name/f.bin@" C1, path, sizeof path, err,
                           sizeof err) == CTTS_OK);
    CHECK(strstr(path, "/models--org--old-name/snapshots/") != NULL); /* cached under the asked id */
    hub_stop(h);
}

typedef struct {
    ctts_hub_params p;
    ctts_status st;
    char path[4096], err[1024];
} fetch_job;

static void *fetch_thread(void *arg) {
    fetch_job *j = arg;
    j->st = ctts_hub_fetch(&j->p, "hf://org/repo/w.bin@" C1, j->path, sizeof j->path, j->err,
                           sizeof j->err);
    return NULL;
}

static void test_concurrent_fetch_one_download(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 8);
    hub_add(h, "org/repo", "w.bin", C1, NULL, big, BIG, 1);
    const char *cache = tmp_dir("concurrent");
    fetch_job j[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        j[i].p = hub_params(h, cache);
        pthread_create(&th[i], NULL, fetch_thread, &j[i]);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(j[i].st, CTTS_OK);
        CHECK(strcmp(j[i].path, j[0].path) == 0);
    }
    CHECK_EQ_INT(atomic_load(&h->n_get), 1); /* the lock made the others wait, not download */
    free(big);
    hub_stop(h);
}

typedef struct {
    int n;
    char text[4096];
} list_acc;

static void on_entry(const ctts_hub_entry *e, void *user) {
    list_acc *a = user;
    size_t o = strlen(a->text);
    snprintf(a->text + o, sizeof a->text - o, "%s|%s|%.8s|%s|%d|%lld|%lld|%lld\n", e->repo_id,
             e->repo_type, e->revision, e->refs, e->n_files, (long long)e->bytes,
             (long long)e->repo_bytes, (long long)e->incomplete_bytes);
    a->n++;
}

static void test_list_cache(void) {
    fakehub *h = hub_start();
    unsigned char *big = make_data(BIG, 9);
    hub_add(h, "org/repo", "a/w.bin", C1, "main", big, BIG, 1);
    hub_add(h, "org/repo", "b.txt", C2, NULL, "bee\n", 4, 0);
    hub_add(h, "org/other", "x.bin", C1, NULL, big, 1000, 1);
    const char *cache = tmp_dir("list");
    ctts_hub_params p = hub_params(h, cache);
    char path[4096], err[1024];
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/a/w.bin", path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    REQUIRE(ctts_hub_fetch(&p, "hf://org/repo/b.txt@" C2, path, sizeof path, err, sizeof err) ==
            CTTS_OK);
    atomic_store(&h->truncate_count, 1);
    CHECK(ctts_hub_fetch(&p, "hf://org/other/x.bin@" C1, path, sizeof path, err, sizeof err) != 0);
    python_cache_file(cache, "datasets--org--data", C3, "d.csv", NULL, "1,2\n", 4);
    list_acc a = {0};
    REQUIRE(ctts_hub_list(cache, on_entry, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.n, 4);
    CHECK_STR_CONTAINS(a.text, "org/data|dataset|33333333||1|4|4|0\n");
    CHECK_STR_CONTAINS(a.text, "org/other|model|||0|0|0|500\n");
    CHECK_STR_CONTAINS(a.text, "org/repo|model|11111111|main|1|300000|300004|0\n");
    CHECK_STR_CONTAINS(a.text, "org/repo|model|22222222||1|4|300004|0\n");
    /* Sorted: datasets-- < models--org--other < models--org--repo. */
    const char *d = strstr(a.text, "org/data"), *o = strstr(a.text, "org/other"),
               *r = strstr(a.text, "org/repo");
    CHECK(d && o && r && d < o && o < r);
    list_acc b = {0};
    CHECK(ctts_hub_list("/nonexistent/ctts/cache", on_entry, &b, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(b.n, 0);
    free(big);
    hub_stop(h);
}

/* ---- models and voices through the hub ---- */

static int serve_golden(fakehub *h, const char *repo, const char *commit, const char *rel,
                        const char *as) {
    size_t n = 0;
    unsigned char *d = test_read_file(golden(rel), &n);
    if (!d) return -1;
    hub_add(h, repo, as, commit, "main", d, n, 1);
    free(d);
    return 0;
}

/* A config.yaml in dir: the golden tiny config with its paths replaced. */
static int write_config(const char *dir, const char *weights, const char *fallback,
                        const char *tokenizer) {
    size_t n = 0;
    char *y = (char *)test_read_file(golden("model/config.yaml"), &n);
    if (!y) return -1;
    y[n] = 0;
    char out[8192];
    size_t o = 0;
    o += (size_t)snprintf(out + o, sizeof out - o, "weights_path: %s\n", weights);
    if (fallback)
        o += (size_t)snprintf(out + o, sizeof out - o,
                              "weights_path_without_voice_cloning: %s\n", fallback);
    for (char *line = strtok(y, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "weights_path:", 13) == 0) continue;
        if (strstr(line, "tokenizer_path:"))
            o += (size_t)snprintf(out + o, sizeof out - o, "    tokenizer_path: %s\n", tokenizer);
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", line);
    }
    free(y);
    char p[1024];
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    return write_file(p, out, o);
}

static float *synth(ctts_model *m, const char *voice, size_t *n) {
    char err[512];
    ctts_voice *v = NULL;
    if (ctts_voice_load(m, voice, &v, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    voice: %s\n", err);
        return NULL;
    }
    ctts_session *s = NULL;
    float *pcm = NULL;
    if (ctts_session_new(m, &s) == CTTS_OK) {
        ctts_gen_params gp = ctts_gen_default_params(m);
        gp.seed = 7;
        if (ctts_synthesize(s, "Hello from the hub.", v, &gp, &pcm, n) != CTTS_OK) pcm = NULL;
    }
    ctts_session_free(s);
    ctts_voice_free(v);
    return pcm;
}

#define TINY_REPO "kyutai-test/pocket-tiny"

static void test_golden_model_from_hub_same_audio(void) {
    fakehub *h = hub_start();
    REQUIRE(serve_golden(h, TINY_REPO, C1, "model/model.safetensors", "model.safetensors") == 0);
    REQUIRE(serve_golden(h, TINY_REPO, C1, "model/tokenizer.model", "tokenizer.model") == 0);
    REQUIRE(serve_golden(h, TINY_REPO, C1, "voice/voice_22k_state.safetensors",
                         "embeddings/tiny.safetensors") == 0);
    const char *dir = tmp_dir("hubmodel");
    REQUIRE(write_config(dir, "hf://" TINY_REPO "/model.safetensors@" C1, NULL,
                         "hf://" TINY_REPO "/tokenizer.model@" C1) == 0);
    const char *cache = tmp_dir("hubmodel_cache");
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    mp.hub = hub_params(h, cache);
    char err[1024];
    ctts_model *hm = NULL, *lm = NULL;
    REQUIRE(ctts_model_load(dir, &mp, &hm, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(ctts_model_get_info(hm)->voice_cloning, 1);
    CHECK_EQ_INT(ctts_model_get_info(hm)->chunks_text, 1); /* Pocket speaks text chunk by chunk */
    CHECK(strcmp(ctts_model_get_info(hm)->language, "") == 0);
    CHECK(ctts_model_default_voice(hm) == NULL); /* a local config has no catalog */
    ctts_model_params lp = ctts_model_default_params();
    lp.n_threads = 1;
    REQUIRE(ctts_model_load(golden("model"), &lp, &lm, err, sizeof err) == CTTS_OK);
    size_t n1 = 0, n2 = 0;
    float *a = synth(hm, "hf://" TINY_REPO "/embeddings/tiny.safetensors@" C1, &n1);
    float *b = synth(lm, golden("voice/voice_22k_state.safetensors"), &n2);
    REQUIRE(a && b);
    CHECK(n1 > 0 && n1 == n2);
    CHECK(n1 == n2 && memcmp(a, b, n1 * sizeof *a) == 0);
    free(a);
    free(b);
    /* A catalog name needs a built-in config: a clear error. */
    ctts_voice *v = NULL;
    CHECK(ctts_voice_load(hm, "alba", &v, err, sizeof err) == CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "built-in config");
    ctts_model_free(hm);
    /* Second load: from the cache, no request at all; then offline too. */
    int before = atomic_load(&h->n_req);
    REQUIRE(ctts_model_load(dir, &mp, &hm, err, sizeof err) == CTTS_OK);
    ctts_model_free(hm);
    mp.hub.offline = 1;
    REQUIRE(ctts_model_load(dir, &mp, &hm, err, sizeof err) == CTTS_OK);
    ctts_model_free(hm);
    CHECK_EQ_INT(atomic_load(&h->n_req), before);
    ctts_model_free(lm);
    hub_stop(h);
}

static void test_fallback_without_voice_cloning(void) {
    fakehub *h = hub_start();
    REQUIRE(serve_golden(h, "org/cloning", C1, "model/model.safetensors", "model.safetensors") ==
            0);
    REQUIRE(serve_golden(h, "org/no-cloning", C2, "model/model.safetensors",
                         "model.safetensors") == 0);
    REQUIRE(serve_golden(h, "org/no-cloning", C2, "model/tokenizer.model", "tokenizer.model") ==
            0);
    snprintf(h->gated_repo, sizeof h->gated_repo, "org/cloning");
    snprintf(h->token, sizeof h->token, "tok");
    const char *dir = tmp_dir("fallback");
    REQUIRE(write_config(dir, "hf://org/cloning/model.safetensors@" C1,
                         "hf://org/no-cloning/model.safetensors@" C2,
                         "hf://org/no-cloning/tokenizer.model@" C2) == 0);
    const char *cache = tmp_dir("fallback_cache");
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    mp.hub = hub_params(h, cache);
    char err[1024];
    ctts_model *m = NULL;
    REQUIRE(ctts_model_load(dir, &mp, &m, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(ctts_model_get_info(m)->voice_cloning, 0);
    ctts_model_free(m);
    /* Offline, only the repo without voice cloning cached: the same fallback. */
    mp.hub.offline = 1;
    REQUIRE(ctts_model_load(dir, &mp, &m, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(ctts_model_get_info(m)->voice_cloning, 0);
    ctts_model_free(m);
    /* With the token: the voice-cloning weights. */
    mp.hub.offline = 0;
    mp.hub.token = "tok";
    REQUIRE(ctts_model_load(dir, &mp, &m, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(ctts_model_get_info(m)->voice_cloning, 1);
    ctts_model_free(m);
    /* Both missing: one line naming both. */
    const char *dir2 = tmp_dir("fallback2");
    REQUIRE(write_config(dir2, "hf://org/cloning/nope.safetensors@" C1,
                         "hf://org/no-cloning/nope.safetensors@" C2,
                         "hf://org/no-cloning/tokenizer.model@" C2) == 0);
    CHECK(ctts_model_load(dir2, &mp, &m, err, sizeof err) == CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "no-cloning/nope.safetensors");
    CHECK_STR_CONTAINS(err, "cloning/nope.safetensors");
    CHECK(m == NULL);
    hub_stop(h);
}

static void test_catalog(void) {
    char uri[512], err[256];
    REQUIRE(ctts_voice_catalog_uri("english", "alba", uri, sizeof uri, err, sizeof err) ==
            CTTS_OK);
    CHECK(strcmp(uri, "hf://kyutai/pocket-tts-without-voice-cloning/languages/english/embeddings/"
                      "alba.safetensors@e041936c75475d350b405bc870bcf7c22da4e9e6") == 0);
    REQUIRE(ctts_voice_catalog_uri("french_24l", "estelle", uri, sizeof uri, err, sizeof err) ==
            CTTS_OK);
    CHECK_STR_CONTAINS(uri, "/languages/french_24l/embeddings/estelle.safetensors@");
    CHECK(ctts_voice_catalog_uri("english", "nobody", uri, sizeof uri, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "unknown catalog voice 'nobody'");
    CHECK(ctts_voice_catalog_uri("klingon", "alba", uri, sizeof uri, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    const char *want[] = {"alba", "marius", "javert", "jean", "fantine", "cosette", "eponine",
                          "azelma"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        for (int k = 0; ctts_voice_catalog_name(k); k++)
            found |= !strcmp(ctts_voice_catalog_name(k), want[i]);
        if (!found) TEST_FAIL_AT("catalog lacks %s", want[i]);
    }
    int n = 0;
    while (ctts_voice_catalog_name(n)) n++;
    CHECK_EQ_INT(n, 26);
    CHECK(ctts_model_builtin_name(0) && strcmp(ctts_model_builtin_name(0), "english") == 0);
}

/* The english built-in's files, served under their official names (dummy contents:
 * ctts pull only fetches and checks, it loads nothing). */
#define EN_CLONING "39592ff23c9ef80098bb74895d104c26275fe2c9"
#define EN_PLAIN "d29db7978e464fb90cb3359ee0c69a273b9142cc"
#define EN_VOICES "e041936c75475d350b405bc870bcf7c22da4e9e6"

static void serve_english(fakehub *h, int with_cloning) {
    if (with_cloning)
        hub_add(h, "kyutai/pocket-tts", "languages/english/model.safetensors", EN_CLONING, NULL,
                "cloning-weights", 15, 1);
    hub_add(h, "kyutai/pocket-tts-without-voice-cloning", "languages/english/model.safetensors",
            EN_PLAIN, NULL, "plain-weights", 13, 1);
    hub_add(h, "kyutai/pocket-tts-without-voice-cloning", "languages/english/tokenizer.model",
            EN_PLAIN, NULL, "tokenizer", 9, 1);
    hub_add(h, "kyutai/pocket-tts-without-voice-cloning",
            "languages/english/embeddings/alba.safetensors", EN_VOICES, NULL, "alba", 4, 1);
    hub_add(h, "kyutai/pocket-tts-without-voice-cloning",
            "languages/english/embeddings/marius.safetensors", EN_VOICES, NULL, "marius", 6, 1);
}

static void test_pull_builtin_with_catalog_voice(void) {
    fakehub *h = hub_start();
    serve_english(h, 0); /* the voice-cloning repo answers 404 here */
    const char *cache = tmp_dir("pull");
    ctts_model_params mp = ctts_model_default_params();
    mp.hub = hub_params(h, cache);
    char err[1024];
    int cloning = -1;
    REQUIRE(ctts_model_pull("english", &mp, NULL, &cloning, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(cloning, 0);
    char p[1024];
    snprintf(p, sizeof p,
             "%s/models--kyutai--pocket-tts-without-voice-cloning/snapshots/" EN_VOICES
             "/languages/english/embeddings/alba.safetensors", cache);
    CHECK(exists(p)); /* the default voice of english */
    REQUIRE(ctts_model_pull("english", &mp, "marius", NULL, err, sizeof err) == CTTS_OK);
    CHECK(ctts_model_pull("english", &mp, "jean", NULL, err, sizeof err) == CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "embeddings/jean.safetensors");
    /* Offline: everything pulled is found without a request. */
    int before = atomic_load(&h->n_req);
    mp.hub.offline = 1;
    REQUIRE(ctts_model_pull("english", &mp, "alba", &cloning, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(atomic_load(&h->n_req), before);
    CHECK(ctts_model_pull("german", &mp, "none", NULL, err, sizeof err) == CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "offline");
    hub_stop(h);
}

/* ---- the command line ---- */

static char out_text[1 << 16], err_text[1 << 16];

static void slurp(const char *path, char *dst, size_t cap) {
    size_t n = 0;
    unsigned char *b = test_read_file(path, &n);
    if (n >= cap) n = cap - 1;
    if (b) memcpy(dst, b, n);
    dst[n] = 0;
    free(b);
}

/* Runs $CTTS_BIN with env (NULL-terminated "K=V" list) and args. */
static int run_cli(const char *const *env, const char *first, ...) {
    const char *bin = test_ctts_bin();
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char outp[256], errp[256];
    snprintf(outp, sizeof outp, "%s/cli.out", root_dir);
    snprintf(errp, sizeof errp, "%s/cli.err", root_dir);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("HF_HUB_OFFLINE");
        unsetenv("HF_TOKEN");
        unsetenv("HF_HUB_CACHE");
        unsetenv("HUGGINGFACE_HUB_CACHE");
        unsetenv("HF_ENDPOINT");
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    slurp(outp, out_text, sizeof out_text);
    slurp(errp, err_text, sizeof err_text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_cli_pull_models_generate(void) {
    const char *bin = getenv("CTTS_BIN");
    if (!bin || access(bin, X_OK) != 0) SKIP("CTTS_BIN is not set (run through make test)");
    fakehub *h = hub_start();
    serve_english(h, 1);
    REQUIRE(serve_golden(h, TINY_REPO, C1, "model/model.safetensors", "model.safetensors") == 0);
    REQUIRE(serve_golden(h, TINY_REPO, C1, "model/tokenizer.model", "tokenizer.model") == 0);
    REQUIRE(serve_golden(h, TINY_REPO, C1, "voice/voice_22k_state.safetensors",
                         "embeddings/tiny.safetensors") == 0);
    snprintf(h->gated_repo, sizeof h->gated_repo, "kyutai/pocket-tts");
    snprintf(h->token, sizeof h->token, "hf_tok");
    const char *home = tmp_dir("cli_home");
    char e_home[300], e_endpoint[100], e_token_file[400];
    snprintf(e_home, sizeof e_home, "HF_HOME=%s", home);
    snprintf(e_endpoint, sizeof e_endpoint, "HF_ENDPOINT=http://127.0.0.1:%d", h->port);
    const char *env[] = {e_home, e_endpoint, NULL};
    /* Gated without a token: the official fallback, said plainly. */
    int rc = run_cli(env, "pull", "english", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR_CONTAINS(out_text, "weights without voice cloning");
    CHECK_STR_CONTAINS(out_text, "default voice: ready");
    /* The token file under HF_HOME is read. */
    snprintf(e_token_file, sizeof e_token_file, "%s/token", home);
    write_file(e_token_file, "hf_tok\n", 7);
    rc = run_cli(env, "pull", "english", "--voice", "marius", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR_CONTAINS(out_text, "weights with voice cloning");
    CHECK_STR_CONTAINS(out_text, "voice marius: ready");
    rc = run_cli(env, "models", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR_CONTAINS(out_text, "kyutai/pocket-tts-without-voice-cloning");
    CHECK_STR_CONTAINS(out_text, EN_VOICES);
    CHECK_STR_CONTAINS(out_text, "english          ready, with voice cloning; default voice cached");
    CHECK_STR_CONTAINS(out_text, "german           not downloaded");
    /* generate through an hf:// config, a voice by hf:// address. */
    const char *dir = tmp_dir("cli_model");
    REQUIRE(write_config(dir, "hf://" TINY_REPO "/model.safetensors@" C1, NULL,
                         "hf://" TINY_REPO "/tokenizer.model@" C1) == 0);
    char wav[300];
    snprintf(wav, sizeof wav, "%s/out.wav", home);
    rc = run_cli(env, "generate", "--model", dir, "--text", "Hi there.", "--voice",
                 "hf://" TINY_REPO "/embeddings/tiny.safetensors@" C1, "--output", wav,
                 "--threads", "1", NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(exists(wav));
    CHECK(strstr(err_text, "\r") == NULL); /* no progress bar when stderr is not a terminal */
    /* Offline (flag and variable): cached files work, missing ones give one line. */
    int before = atomic_load(&h->n_req);
    rc = run_cli(env, "generate", "--model", dir, "--text", "Hi.", "--output", wav, "--offline",
                 "--threads", "1", NULL);
    CHECK_EQ_INT(rc, 0);
    const char *env_off[] = {e_home, e_endpoint, "HF_HUB_OFFLINE=1", NULL};
    rc = run_cli(env_off, "pull", "german", NULL);
    CHECK_EQ_INT(rc, 1);
    CHECK_STR_CONTAINS(err_text, "offline mode is on");
    CHECK(strchr(err_text, '\n') == strrchr(err_text, '\n'));
    CHECK_EQ_INT(atomic_load(&h->n_req), before);
    /* generate with no --model: english and alba (the dummy files then fail to parse). */
    rc = run_cli(env, "generate", "--text", "Hi.", "--output", wav, NULL);
    CHECK_EQ_INT(rc, 1);
    CHECK_STR_CONTAINS(err_text, "ctts: error: ");
    CHECK_STR_CONTAINS(err_text, "pocket-tts/snapshots/" EN_CLONING
                                 "/languages/english/model.safetensors");
    hub_stop(h);
}

static void cleanup(void) {
    if (root_dir[0]) rm_rf(root_dir);
}

int main(int argc, char **argv) {
    static const test_entry tests[] = {
        T(test_hash_vectors),
        T(test_parse_uri),
        T(test_first_download_layout),
        T(test_second_run_no_traffic),
        T(test_python_prefilled_cache),
        T(test_resume_after_cut),
        T(test_progress_and_cancel),
        T(test_gated_401_403),
        T(test_404),
        T(test_500_then_success),
        T(test_truncated_body),
        T(test_slow_body_times_out),
        T(test_wrong_checksum),
        T(test_offline),
        T(test_relative_redirect),
        T(test_concurrent_fetch_one_download),
        T(test_list_cache),
        T(test_golden_model_from_hub_same_audio),
        T(test_fallback_without_voice_cloning),
        T(test_catalog),
        T(test_pull_builtin_with_catalog_voice),
        T(test_cli_pull_models_generate),
    };
    atexit(cleanup);
    return test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
}
