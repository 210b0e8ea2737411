#!/usr/bin/env bash
# The examples, run the way the README shows them, so they never rot: the C quickstart and
# the membership demo in C, Python and Go, each on mem://, each of which must report the
# clean leave (DELETE) and the death (EXPIRED) of its two nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check() {
    local name=$1 log=$2
    if grep -q "n-1 left" "$log" && grep -q "n-2 DIED" "$log"; then
        echo "ok: $name"
    else
        echo "FAILED: $name"; sed 's/^/    | /' "$log"; return 1
    fi
}

bash examples/quickstart.sh > "$out/c.log" 2>&1
check "make demo (quickstart.c, membership.c)" "$out/c.log"
PYTHONPATH="$repo/bindings/python" COORDKV_LIB="$repo/target/debug/libcoordkv.so" \
    python3 examples/membership.py > "$out/py.log" 2>&1
check "examples/membership.py" "$out/py.log"
(cd examples/go && go run .) > "$out/go.log" 2>&1
check "examples/go (membership.go)" "$out/go.log"
