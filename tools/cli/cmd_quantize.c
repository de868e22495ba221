/*
 * ctts quantize IN OUT_DIR --type q8_0|q4_0|bf16|f32: loads the model IN
 * (any --model form) with its linear weights converted to the type (the
 * per-tensor policy of the loader: what stays in higher precision), then
 * writes OUT_DIR/model.gguf, config.yaml and tokenizer.model. `--model
 * OUT_DIR` afterwards maps the GGUF and needs no conversion at load.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_quantize(int argc, char **argv, cli_args *a) {
    if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return cli_usage_error("%s", "quantize needs IN and OUT_DIR: ctts quantize IN OUT_DIR "
                                     "--type q8_0|q4_0|bf16|f32");
    const char *in = argv[1], *out = argv[2];
    int rc = cli_parse_args(argc - 2, argv + 2, a);
    if (rc) return rc;
    if (!a->qtype) return cli_usage_error("%s", "quantize needs --type q8_0|q4_0|bf16|f32");
    if (!strcmp(a->qtype, "q8_0")) a->mp.weight_type = CTTS_WEIGHTS_Q8_0;
    else if (!strcmp(a->qtype, "q4_0")) a->mp.weight_type = CTTS_WEIGHTS_Q4_0;
    else if (!strcmp(a->qtype, "bf16")) a->mp.weight_type = CTTS_WEIGHTS_BF16;
    else if (!strcmp(a->qtype, "f32")) a->mp.weight_type = CTTS_WEIGHTS_F32;
    else return cli_usage_error("--type must be q8_0, q4_0, bf16 or f32, got '%s'", a->qtype);
    a->model = in;
    ctts_model *m = NULL;
    if ((rc = cli_load_model(a, &m))) return rc;
    char err[1024];
    if (ctts_model_export_gguf(m, out, err, sizeof err) != CTTS_OK) rc = cli_fail("%s", err);
    else if (!a->quiet) fprintf(stderr, "ctts: wrote %s/model.gguf (%s)\n", out, a->qtype);
    ctts_model_free(m);
    return rc;
}
