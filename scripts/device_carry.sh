#!/usr/bin/env bash
# Packs what the side-by-side comparison with the official Pocket TTS code needs on the GPU
# machine (whose CPU runs PyTorch 2.11) into .devcarry/ (add "/.devcarry/" to .git/info/exclude):
# the ctts binary and its shared libraries, ../shared/refgen, the official source, the full
# tokenizer, scripts/bench_official.sh and a run.sh that makes the full-size random model there
# and runs both implementations pinned to CPUs 0,1 (fp32 and int8, torch 1 and 2 threads).
#   scripts/device_carry.sh OFFICIAL_SRC_DIR     (a checkout of kyutai-labs/pocket-tts)
# Then, with the device tool: run "bash .devcarry/run.sh" with carry [".devcarry"].
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: scripts/device_carry.sh OFFICIAL_SRC_DIR}
make -j2 build/ctts >/dev/null
rm -rf .devcarry && mkdir -p .devcarry/bin .devcarry/lib .devcarry/pocket-ref
cp build/ctts .devcarry/bin/ && cp scripts/bench_official.sh .devcarry/
ldd build/ctts | awk '/=>/{print $3}' | grep -vE 'libc\.so|libm\.so|ld-linux|libpthread|libdl\.so|librt\.so' |
    xargs -I{} cp -L {} .devcarry/lib/
cp -r ../shared/refgen .devcarry/refgen && chmod -R u+w .devcarry/refgen
cp -r "$src/pocket_tts" .devcarry/pocket-ref/
cp ../shared/golden/pocket-full/tokenizer.model .devcarry/
cat > .devcarry/run.sh <<'RUN'
#!/usr/bin/env bash
set -u
cd "$(dirname "$0")"; D=$PWD
export LD_LIBRARY_PATH=$D/lib POCKET_REF=$D/pocket-ref REFGEN=$D/refgen
lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c 'import torch; print("torch", torch.__version__)'
$D/bin/ctts dev make-random-model --config english --seed 1 --out /tmp/pf --tokenizer $D/tokenizer.model --quiet
for cfg in "--threads 1" "--threads 2" "--threads 1 --quantize --weights q8_0" "--threads 2 --quantize --weights q8_0"; do
    echo "=== $cfg"
    bash $D/bench_official.sh --model /tmp/pf --ctts $D/bin/ctts --python python3 --frames 100 \
        --rounds 3 --runs 3 --cpus 0,1 $cfg 2>&1 | grep -v WARNING | tail -4
done
RUN
chmod +x .devcarry/run.sh
du -sh .devcarry
