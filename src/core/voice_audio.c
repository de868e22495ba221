/*
 * Voices from audio files (see voice_audio.h). The file is mapped once: its
 * bytes are hashed for the cache key and decoded from memory by libsndfile.
 */
#include "core/voice_audio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/audio_read.h"
#include "base/error.h"
#include "base/sha256.h"
#include "io/mmap.h"

int voice_path_is_state(const char *path) {
    if (!path) return 0;
    size_t n = strlen(path);
    if (n >= 12 && strcasecmp(path + n - 12, ".safetensors") == 0) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[9];
    size_t got = fread(b, 1, sizeof b, f);
    long size = -1;
    if (got == sizeof b && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    fclose(f);
    if (got != sizeof b || size < 9) return 0;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    return b[8] == '{' && hl >= 2 && hl <= (uint64_t)size - 8;
}

/* mkdir -p; 0 on success. */
static int make_dirs(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        buf[i] = c;
    }
    struct stat sb;
    return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

/* <dir>/<audio sha256>-<16 hex of sha256(model id, max_seconds)>.safetensors */
static ctts_status cache_path(const pocket_model *m, const void *bytes, size_t len,
                              double max_seconds, const char *dir, char *out, size_t out_len) {
    unsigned char audio_id[32], model_id[32], key[32];
    ctts_sha256_buf(bytes, len, audio_id);
    ctts_status st = pocket_model_identity(m, model_id);
    if (st != CTTS_OK) return st;
    char cut[64];
    snprintf(cut, sizeof cut, "max_seconds=%.17g", max_seconds);
    ctts_sha256 h;
    ctts_sha256_init(&h);
    ctts_sha256_update(&h, model_id, sizeof model_id);
    ctts_sha256_update(&h, cut, strlen(cut));
    ctts_sha256_final(&h, key);
    char ahex[65], khex[65];
    ctts_hex(audio_id, 32, ahex);
    ctts_hex(key, 8, khex);
    int k = snprintf(out, out_len, "%s/%s-%s.safetensors", dir, ahex, khex);
    return k > 0 && (size_t)k < out_len ? CTTS_OK : CTTS_E_INVALID_ARG;
}

/* Writes v to path through a temporary file in the same directory. */
static void cache_store(const pocket_voice *v, const char *dir, const char *path) {
    if (make_dirs(dir) != 0) return;
    char tmp[4200];
    int k = snprintf(tmp, sizeof tmp, "%s.%ld.%p.tmp", path, (long)getpid(), (const void *)v);
    if (k <= 0 || (size_t)k >= sizeof tmp) return;
    char err[256];
    if (pocket_voice_save(v, tmp, err, sizeof err) != CTTS_OK) {
        remove(tmp);
        return;
    }
    if (rename(tmp, path) != 0) remove(tmp);
}

ctts_status voice_from_audio_file(pocket_model *m, const char *path, double max_seconds,
                                  const char *cache_dir, pocket_voice **out, int *cache_hit,
                                  char *err, size_t err_len) {
    *out = NULL;
    if (cache_hit) *cache_hit = 0;
    ctts_mapped_file f;
    ctts_status st = ctts_map_file(path, &f, err, err_len);
    if (st != CTTS_OK) return st;
    if (f.size == 0) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty file", path);
    char cpath[4096];
    int use_cache = cache_dir && cache_dir[0] &&
                    cache_path(m, f.data, f.size, max_seconds, cache_dir, cpath, sizeof cpath) ==
                        CTTS_OK;
    if (use_cache && access(cpath, R_OK) == 0) {
        char ignored[256];
        if (pocket_voice_load(m, cpath, out, ignored, sizeof ignored) == CTTS_OK) {
            ctts_unmap_file(&f);
            if (cache_hit) *cache_hit = 1;
            return CTTS_OK;
        }
    }
    audio_clip clip;
    st = audio_read_memory(f.data, f.size, path, max_seconds, &clip, err, err_len);
    ctts_unmap_file(&f);
    if (st != CTTS_OK) return st;
    st = pocket_voice_from_pcm(m, clip.pcm, clip.n, clip.sample_rate, out, err, err_len);
    audio_clip_free(&clip);
    if (st != CTTS_OK) {
        /* Stage messages do not name the file: add it. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err ? err : "");
        return ctts_err(err, err_len, st, "%s: %s", path, inner);
    }
    if (use_cache) cache_store(*out, cache_dir, cpath);
    return CTTS_OK;
}
