/*
 * Export of a loaded Pocket model as a GGUF model directory (ctts quantize):
 * out_dir/model.gguf holds every tensor in the dtype it has after load-time
 * conversion (so `--weights q8_0` at load + export = a Q8_0 file), with the
 * canonical tensor names; out_dir/config.yaml is the model's config pointing
 * at model.gguf and tokenizer.model; the tokenizer is copied. Loading that
 * directory maps the GGUF and binds the tensors without copying or converting.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/file_copy.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

ctts_status pocket_model_export_gguf(const pocket_model *m, const char *out_dir, char *err,
                                     size_t err_len) {
    if (!m || !out_dir || !out_dir[0])
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "export: no output directory");
    if (!m->cfg.tokenizer_path[0] || strncmp(m->cfg.tokenizer_path, "hf://", 5) == 0)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "export: the model's tokenizer is not a local file");
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot create '%s': %s", out_dir,
                        strerror(errno));
    char path[POCKET_PATH_MAX + 32];
    const char *kv[] = {"general.architecture", "pocket-tts",
                        "general.name", m->cfg.name,
                        "ctts.source", pocket_weights_source(m->weights)};
    snprintf(path, sizeof path, "%s/model.gguf", out_dir);
    ctts_status st = pocket_weights_write_gguf(m->weights, path, kv, 3, err, err_len);
    if (st == CTTS_OK) {
        snprintf(path, sizeof path, "%s/tokenizer.model", out_dir);
        st = io_copy_file(m->cfg.tokenizer_path, path, err, err_len);
    }
    if (st == CTTS_OK) {
        char comment[2 * POCKET_PATH_MAX];
        snprintf(comment, sizeof comment, "Pocket TTS model '%s' exported by ctts quantize from %s",
                 m->cfg.name, pocket_weights_source(m->weights));
        snprintf(path, sizeof path, "%s/config.yaml", out_dir);
        st = pocket_write_config(&m->cfg, path, "model.gguf", comment, err, err_len);
    }
    return st;
}
