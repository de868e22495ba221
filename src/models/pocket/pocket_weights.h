/*
 * Pocket TTS checkpoint loading: both official layouts into one table of
 * canonical (single-file TTSModel state-dict) names.
 *
 *  - single file (`weights_path`): model.safetensors with flow_lm.* / mimi.*
 *    names; tensors are zero-copy views into the mapping.
 *  - GGUF (`weights_path` ending in .gguf, written by ctts quantize): the
 *    canonical names, any dtype, zero-copy views into the mapping.
 *  - split files (`flow_lm.weights_path` + `mimi.weights_path`): training
 *    names are renamed, junk keys skipped and weight-norm pairs (g, v) folded
 *    into plain weights (owned buffers), exactly as the official loader does.
 *
 * Model code looks tensors up by canonical name through pocket_weights_get
 * (a pocket_weight_lookup); every lookup marks the tensor used, so after
 * binding the loader can reject tensors nobody asked for (the official
 * loader is strict too). It does not know shapes: binding code checks them.
 */
#ifndef CTTS_POCKET_WEIGHTS_H
#define CTTS_POCKET_WEIGHTS_H

#include <stdio.h>

#include "models/pocket/pocket_config.h"

typedef struct pocket_weights pocket_weights;

ctts_status pocket_weights_open(const pocket_config *cfg, pocket_weights **out, char *err,
                                size_t err_len);
void pocket_weights_free(pocket_weights *w);
/* A pocket_weight_lookup: ctx is the pocket_weights. Marks the tensor used. */
const ctts_tensor *pocket_weights_get(void *ctx, const char *name);
/* Error naming the first tensor never looked up (CTTS_OK if all were). */
ctts_status pocket_weights_check_all_used(const pocket_weights *w, char *err, size_t err_len);
int pocket_weights_count(const pocket_weights *w);
const ctts_tensor *pocket_weights_at(const pocket_weights *w, int i);
int64_t pocket_weights_n_params(const pocket_weights *w);
/* Converts the linear (2-D matrix) weights to the dtype wt asks for (F32,
 * BF16, Q8_0, Q4_0; KEEP does nothing), on up to n_threads threads, before
 * binding. Kept as stored: the text embedding table and non-matrix tensors
 * (see pocket_weights.c). Converted tensors own their data; the mapped pages
 * of the originals are released. Errors: CTTS_E_OOM, CTTS_E_INVALID_ARG. */
ctts_status pocket_weights_convert(pocket_weights *w, ctts_weight_type wt, int n_threads,
                                   char *err, size_t err_len);
/* Writes every tensor (as held now: converted ones in their new dtype) and the
 * string metadata kv[0..2*n_kv) to a GGUF file that pocket_weights_open reads
 * back zero-copy when a config's weights_path names it. */
ctts_status pocket_weights_write_gguf(const pocket_weights *w, const char *path,
                                      const char *const *kv, int n_kv, char *err,
                                      size_t err_len);
/* Files the weights came from ("a.safetensors" or "a + b"). */
const char *pocket_weights_source(const pocket_weights *w);

#endif
