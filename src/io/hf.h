/*
 * Hugging Face hub client and cache (the huggingface_hub layout, so files are
 * shared with the Python tools both ways):
 *
 *   <cache>/models--<org>--<name>/blobs/<etag>            file contents
 *                                /blobs/<etag>.incomplete  a download in progress (resumable)
 *                                /snapshots/<commit>/<path> -> ../../blobs/<etag> (relative link)
 *                                /refs/<revision>           commit hash of a branch or tag
 *   <cache>/.locks/models--<org>--<name>/<etag>.lock       flock'ed while downloading
 *
 * hf_fetch: a pinned commit already in the cache costs no request; otherwise
 * HEAD <endpoint>/<repo>/resolve/<revision>/<path> (relative redirects of
 * renamed repos followed, X-Repo-Commit / X-Linked-Etag / ETag /
 * X-Linked-Size / Content-Length / Location read), then GET the Location with
 * Range resume, retries with backoff, verification, rename, link.
 * Offline mode and unreachable hubs fall back to what the cache holds.
 * Repos other than models, xet transfers and .no_exist markers are not handled.
 */
#ifndef CTTS_IO_HF_H
#define CTTS_IO_HF_H

#include <stddef.h>

#include "ctts.h"

typedef struct {
    char repo_id[128];   /* "org/name" */
    char filename[1024]; /* path inside the repo */
    char revision[256];  /* branch, tag or commit; "main" when absent */
} hf_uri;

/* 1 when s starts with "hf://". */
int hf_is_uri(const char *s);
/* Splits hf://org/name/path[@revision], rejecting unsafe names ("..", "--" in ids, ...). */
ctts_status hf_parse_uri(const char *uri, hf_uri *u, char *err, size_t err_len);

ctts_hub_params hf_default_params(void);
/* Deep copy (strings duplicated) into dst; free with hf_params_free. */
ctts_status hf_params_dup(const ctts_hub_params *src, ctts_hub_params *dst);
void hf_params_free(ctts_hub_params *p);

/* See ctts_hub_fetch in ctts.h. */
ctts_status hf_fetch(const ctts_hub_params *hp, const char *uri, char *path, size_t path_len,
                     char *err, size_t err_len);

/* See ctts_hub_list in ctts.h (hf_cache.c). */
ctts_status hf_list(const char *cache_dir, ctts_hub_entry_fn fn, void *user, char *err,
                    size_t err_len);

#endif
