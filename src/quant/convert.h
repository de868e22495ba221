/*
 * Weight conversion at load time: a float tensor (F32 / BF16 / F16) to F32,
 * BF16, Q8_0 or Q4_0, row by row over its innermost dimension, into a new
 * malloc'd buffer the caller owns. Used by model loaders for
 * ctts_model_params.weight_type; which tensors are converted is the loader's
 * policy, not decided here. Rows are converted on up to n_threads threads
 * (plain pthreads, joined before return). No other state.
 */
#ifndef CTTS_QUANT_CONVERT_H
#define CTTS_QUANT_CONVERT_H

#include <stddef.h>

#include "base/tensor.h"
#include "ctts.h"

/* Whether src can be converted to dtype to: src is F32/BF16/F16, to is
 * F32/BF16/F16/Q8_0/Q4_0, and block types need the last dim % 32 == 0. */
int quant_can_convert(const ctts_tensor *src, ctts_dtype to);

/* Converts src to dtype to into *out (malloc'd, *out_bytes long). Errors:
 * CTTS_E_UNSUPPORTED (see quant_can_convert), CTTS_E_OOM; the message names
 * the tensor. */
ctts_status quant_convert(const ctts_tensor *src, ctts_dtype to, int n_threads, void **out,
                          size_t *out_bytes, char *err, size_t err_len);

/* The dtype a ctts_weight_type asks linear weights to be stored in
 * (CTTS_DT_COUNT for CTTS_WEIGHTS_KEEP or an unknown value). */
ctts_dtype quant_weight_dtype(ctts_weight_type wt);

/* Tells the OS that the whole pages inside [p, p + n) of a read-only file
 * mapping are not needed any more (they leave the resident set; reading them
 * again faults them back in from the file). No-op where unsupported. */
void quant_release_pages(const void *p, size_t n);

#endif
