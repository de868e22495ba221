#!/usr/bin/env bash
# Runs every test program under $BUILD/tests and adds up their counts.
# The last line is "N passed, N failed, N skipped"; exit status 1 on any failure.
set -u
BUILD=${BUILD:-build}
export CTTS_BIN="$PWD/$BUILD/ctts"
passed=0; failed=0; skipped=0; broken=0
for t in $(find "$BUILD/tests" -type f -name 'test_*' ! -name '*.d' | sort); do
    echo "== $t"
    # A hung test must not hang CI: each program gets at most TEST_TIMEOUT seconds.
    out=$(timeout "${TEST_TIMEOUT:-600}" "$t" 2>&1); rc=$?
    [ "$rc" -eq 124 ] && echo "   timed out after ${TEST_TIMEOUT:-600} s"
    printf '%s\n' "$out" | grep -v '^PASS ' 
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "   no summary line (exit $rc): counted as one failure"
        failed=$((failed + 1)); broken=$((broken + 1)); continue
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "   exit $rc with no failed test: counted as one failure"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
