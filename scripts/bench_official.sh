#!/usr/bin/env bash
# Side-by-side speed of ctts and the official Pocket TTS implementation on the
# same model, text, frame count and threads, pinned to the same CPUs, in
# alternating rounds (so drifting machine load hits both alike). Prints each
# round and the median ratio (official wall time / ctts wall time: > 1 means
# ctts is faster).
#
#   scripts/bench_official.sh [--model DIR] [--frames N] [--threads N] [--ctts-threads N]
#       [--runs N] [--rounds N] [--cpus LIST] [--weights f32|bf16|q8_0|q4_0] [--quantize]
#       [--text T] [--ctts PATH] [--python PATH]
#
# Defaults: --model /tmp/pocket-full (refgen make_model.py --config full; made
# with ctts dev make-random-model if missing), 100 frames, torch threads 1 (the
# official default: one intra-op thread plus its audio-decoding thread, so it
# uses two cores), ctts threads = the number of CPUs in --cpus, 3 runs per
# round, 3 rounds, CPUs 0,1 (taskset), f32 weights, build/ctts (built if
# missing). --quantize runs the official int8 mode; pair it with --weights q8_0.
# Needs python3 with torch and the official code as described in
# ../shared/refgen/README.md (official_bench.py, POCKET_REF).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=/tmp/pocket-full FRAMES=100 THREADS=1 CTHREADS="" RUNS=3 ROUNDS=3 CPUS=0,1 WEIGHTS=f32 QUANT=""
TEXT="The quick brown fox jumps over the lazy dog, while the cat sleeps quietly."
CTTS=build/ctts PY=python3
REFGEN=${REFGEN:-../shared/refgen}
while [ $# -gt 0 ]; do
    case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --frames) FRAMES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --ctts-threads) CTHREADS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --weights) WEIGHTS=$2; shift 2 ;;
    --quantize) QUANT=--quantize; shift ;;
    --text) TEXT=$2; shift 2 ;;
    --ctts) CTTS=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    *) echo "bench_official.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

[ -n "$CTHREADS" ] || CTHREADS=$(echo "$CPUS" | tr ',' '\n' | wc -l)
[ -x "$CTTS" ] || make -j"$(nproc)" "$CTTS" >/dev/null
if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "bench_official.sh: making the full-size random model in $MODEL" >&2
    "$CTTS" dev make-random-model --config english --seed 1 --out "$MODEL" \
        --tokenizer ../shared/golden/pocket-full/tokenizer.model --quiet
fi
PIN=(taskset -c "$CPUS")
command -v taskset >/dev/null || PIN=()

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "model $MODEL, $FRAMES frames, CPUs $CPUS, torch threads $THREADS, ctts threads $CTHREADS," \
     "ctts --weights $WEIGHTS," \
     "official ${QUANT:-fp32}, $ROUNDS rounds x $RUNS runs"
for r in $(seq 1 "$ROUNDS"); do
    "${PIN[@]}" "$PY" "$REFGEN/official_bench.py" --model "$MODEL" --frames "$FRAMES" \
        --threads "$THREADS" --runs "$RUNS" --text "$TEXT" --json $QUANT > "$OUT/official_$r.json"
    "${PIN[@]}" "$CTTS" bench --model "$MODEL" --text "$TEXT" --max-frames "$FRAMES" \
        --threads "$CTHREADS" --runs "$RUNS" --weights "$WEIGHTS" --voice none --json \
        > "$OUT/ctts_$r.json"
    "$PY" - "$OUT/official_$r.json" "$OUT/ctts_$r.json" "$r" <<'PYEOF'
import json, sys
o = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))["texts"][0]
print(f"round {sys.argv[3]}: official {o['wall_s_median']*1e3:8.1f} ms ({o['x_realtime']:.2f}x rt, "
      f"first audio {o['ttfa_ms_median']:.0f} ms) | ctts {c['total_ms']:8.1f} ms "
      f"({c['x_real_time']:.2f}x rt, first audio {c['first_audio_ms']:.0f} ms) | "
      f"ratio {o['wall_s_median']*1e3/c['total_ms']:.2f}x")
PYEOF
done
"$PY" - "$OUT" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
o = [json.load(open(f"{d}/official_{r}.json")) for r in range(1, n + 1)]
c = [json.load(open(f"{d}/ctts_{r}.json"))["texts"][0] for r in range(1, n + 1)]
ow = statistics.median(x["wall_s_median"] * 1e3 for x in o)
cw = statistics.median(x["total_ms"] for x in c)
of = statistics.median(x["ttfa_ms_median"] for x in o)
cf = statistics.median(x["first_audio_ms"] for x in c)
print(f"median: official {ow:.1f} ms ({o[0]['audio_s']/ow*1e3:.2f}x real time, torch {o[0]['torch']}), "
      f"ctts {cw:.1f} ms ({c[0]['audio_s']/cw*1e3:.2f}x real time)")
print(f"speed ratio ctts / official: {ow/cw:.2f}x; first audio {of:.0f} ms vs {cf:.0f} ms")
PYEOF
