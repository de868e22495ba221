#!/usr/bin/env bash
# Speed of `ctts serve` as clients see it: time to first audio byte and real-time
# factor of streamed requests, alone and concurrent, plus the server's peak RSS.
#
#   bench/bench_serve.sh MODEL [serve options...]     e.g.
#   bench/bench_serve.sh /tmp/q3q8 --threads 2 --max-new-tokens 60
#
# Env: TEXT (the request text), BODY_EXTRA (more JSON fields, e.g. '"voice":"ryan",'),
# CONC ("1 2 3": concurrent streams per round), CTTS (build/ctts).
# Each round starts CONC streamed raw-PCM requests at once (curl); for each it
# takes time to first byte and total time; audio seconds = bytes / 48000.
# "aggregate x" = all audio of the round / its wall time; "slowest x" = the
# slowest stream's audio / its own time (>= 1 keeps up with playback).
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,13p' "$0"; exit 2; }
model=$1; shift
CTTS=${CTTS:-build/ctts}
TEXT=${TEXT:-"The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were striking thirteen."}
BODY_EXTRA=${BODY_EXTRA:-}
CONC=${CONC:-"1 2 3"}
command -v curl >/dev/null || { echo "bench_serve: needs curl" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT

"$CTTS" serve --model "$model" --port 0 "$@" 2>"$tmp/err" &
pid=$!
for _ in $(seq 600); do grep -q "http://" "$tmp/err" && break; sleep 0.1; done
port=$(sed -n 's/.*http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/err")
[ -n "$port" ] || { cat "$tmp/err" >&2; exit 1; }
body="{${BODY_EXTRA}\"input\":\"$TEXT\",\"stream\":true,\"response_format\":\"pcm\",\"seed\":1}"
req() { curl -s -N -o "$1" -w "%{time_starttransfer} %{time_total} %{size_download}\n" -d "$body" "http://127.0.0.1:$port/v1/audio/speech"; }

req /dev/null >/dev/null # warm-up: pages the weights in
echo "model $model, serve options: $*"
printf "%-6s %14s %14s %12s %11s\n" streams "first byte ms" "(max) ms" "aggregate x" "slowest x"
for c in $CONC; do
    t0=$(date +%s.%N)
    for i in $(seq "$c"); do req /dev/null >"$tmp/r$i" & done
    wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
    t1=$(date +%s.%N)
    cat "$tmp"/r[0-9]* | awk -v c="$c" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" '
        { ttfb += $1; if ($1 > mx) mx = $1; a = $3 / 48000; audio += a; x = a / $2; if (min == "" || x < min) min = x }
        END { printf "%-6d %14.0f %14.0f %12.2f %11.2f\n", c, 1000 * ttfb / NR, 1000 * mx, audio / wall, min }'
    rm -f "$tmp"/r[0-9]*
done
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$pid/status)"
