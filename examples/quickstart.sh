#!/bin/sh
# quickstart.sh — builds libcoordkv, examples/quickstart.c and examples/membership.c, then
# runs both demos (the second shows a node leaving and one dying, on mem://).
#
# The demo links against the shared library cargo leaves in target/debug, found at run
# time through an rpath, so nothing is installed. Set CC to use another compiler.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

echo "==> cargo build"
cargo build --quiet

out=target/examples-c
mkdir -p "$out"
for example in quickstart membership; do
    echo "==> ${CC:-cc} examples/$example.c"
    "${CC:-cc}" -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -pedantic -Iinclude \
        "examples/$example.c" -Ltarget/debug -lcoordkv -Wl,-rpath,"$repo/target/debug" \
        -o "$out/$example"
done

echo "==> $out/quickstart"
"$out/quickstart"
echo
echo "==> $out/membership (a node that leaves, and one that dies)"
exec "$out/membership"
