#!/bin/sh
# quickstart.sh — builds libcoordkv and examples/quickstart.c, then runs the demo.
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
echo "==> ${CC:-cc} examples/quickstart.c"
"${CC:-cc}" -std=c99 -Wall -Wextra -pedantic -Iinclude examples/quickstart.c \
    -Ltarget/debug -lcoordkv -Wl,-rpath,"$repo/target/debug" -o "$out/quickstart"

echo "==> $out/quickstart"
exec "$out/quickstart"
