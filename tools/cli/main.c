/*
 * ctts command-line tool. A client of include/ctts.h only.
 *
 *   ctts generate  --model M --text T --output out.wav [options]
 *   ctts tokenize  --model M --text T [--prepared]
 *   ctts info      --model M
 *   ctts export-voice --model M --audio clip.wav --output voice.safetensors
 *   ctts stream    --model M --text T|--text-file F|- [--output out.wav] (else raw PCM)
 *   ctts dev make-random-model --config NAME|YAML --seed N --out DIR [--tokenizer FILE]
 *   ctts pull MODEL [--voice V|all|none]     (Hugging Face hub cache)
 *   ctts models
 *   ctts quantize  IN OUT_DIR --type q8_0|q4_0|bf16|f32   (GGUF model directory)
 *   ctts serve     --model M [--host H] [--port N] [--voice V]   (HTTP speech server)
 *   ctts bench     --model M [--weights W] [--threads N] [--max-frames N] [--runs N] [--json] [--profile]
 *
 * Options follow GNU conventions: "--opt VALUE" and "--opt=VALUE" both work,
 * so texts may start with '-'. Exit status 0 on success; on failure one line
 * "ctts: error: ..." on stderr and status 1 (2 for usage errors).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ctts %s\n", ctts_version());
        return 0;
    }
    cli_args a;
    memset(&a, 0, sizeof a);
    a.mp = ctts_model_default_params();
    cli_hub_setup(&a);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "dev")) return cmd_dev(argc - 1, argv + 1, &a);
    if (!strcmp(cmd, "pull")) return cmd_pull(argc - 1, argv + 1, &a);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 1, argv + 1, &a);
    int rc = cli_parse_args(argc - 1, argv + 1, &a);
    if (rc) return rc;
    if (!strcmp(cmd, "generate")) return cmd_generate(&a);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(&a);
    if (!strcmp(cmd, "info")) return cmd_info(&a);
    if (!strcmp(cmd, "models")) return cmd_models(&a);
    if (!strcmp(cmd, "export-voice")) return cmd_export_voice(&a);
    if (!strcmp(cmd, "stream")) return cmd_stream(&a);
    if (!strcmp(cmd, "bench")) return cmd_bench(&a);
    if (!strcmp(cmd, "serve")) return cmd_serve(&a);
    return cli_usage_error("unknown command '%s'", cmd);
}
