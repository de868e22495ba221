#!/usr/bin/env bash
# Checks the include rules of docs/ARCHITECTURE.md with a grep over #include lines.
set -u
cd "$(dirname "$0")/.."
bad=0
check() { # dir pattern message
    local hits
    hits=$(grep -rnE "#include \"($2)" "$1" 2>/dev/null)
    if [ -n "$hits" ]; then echo "lint-deps: $3"; echo "$hits"; bad=1; fi
}
check tools/cli "src/|base/|io/|text/|audio/|cpu/|backend/|models/|nn/|core/" "tools/ may include only ctts.h"
# The server also parses requests with the I/O layer's parsers (no model knowledge).
hits=$(grep -rnE '#include "' tools/server | grep -vE '#include "(ctts|cli|io/http|io/json)\.h"')
if [ -n "$hits" ]; then
    echo "lint-deps: tools/server may include ctts.h, cli.h, io/http.h and io/json.h only"; echo "$hits"; bad=1
fi
check src/cpu "models/|nn/|core/|io/|text/|audio/" "src/cpu knows nothing of models"
check src/backend "models/|nn/|core/" "src/backend knows nothing of models"
check src/nn "models/|core/" "src/nn knows no model family"
check src/base "io/|text/|audio/|cpu/|backend/|models/|nn/|core/" "src/base includes nothing of ours"
check src/models "cpu/" "models talk to the backend, not to src/cpu"
if grep -rn "getenv" src | grep -v "^src/.*:.*\*" >/dev/null; then
    echo "lint-deps: the library must not read environment variables:"; grep -rn "getenv" src; bad=1
fi
[ $bad -eq 0 ] && echo "lint-deps: ok"
exit $bad
