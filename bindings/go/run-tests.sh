#!/usr/bin/env bash
# The Go binding's test run, called by scripts/test.sh.
#
# Links against $COORDKV_LIB_DIR when it is set (through CGO_LDFLAGS, which comes before
# the package's own -L on the link line), otherwise builds the library with cargo and
# uses <repo>/target/debug, the package's default. Then: go vet, go test linked
# dynamically, the same under the race detector, and go test with -tags coordkv_static
# after checking that the static test binary really does not need libcoordkv.so.
# COORDKV_TEST_NATS_URL, when set, makes every store test run on NATS as well.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [[ -n "${COORDKV_LIB_DIR:-}" ]]; then
    lib_dir="$(cd "$COORDKV_LIB_DIR" && pwd)"
    export CGO_LDFLAGS="-L$lib_dir -Wl,-rpath,$lib_dir${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
else
    echo "== cargo build ($repo)"
    (cd "$repo" && cargo build)
    lib_dir="$repo/target/debug"
fi
for lib in libcoordkv.so libcoordkv.a; do
    if [[ ! -f "$lib_dir/$lib" ]]; then
        echo "run-tests.sh: $lib_dir/$lib is missing" >&2
        exit 1
    fi
done
echo "== linking against $lib_dir${COORDKV_TEST_NATS_URL:+ (NATS tests on $COORDKV_TEST_NATS_URL)}"

cd "$here"
export CGO_ENABLED=1

echo "== go vet"
go vet ./...
go vet -tags coordkv_static ./...

echo "== go test (dynamic)"
go test -count=1 ./...

echo "== go test -race (dynamic)"
go test -count=1 -race ./...

echo "== go test -tags coordkv_static"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
go test -c -tags coordkv_static -o "$scratch/static.test" .
if ldd "$scratch/static.test" | grep -q libcoordkv; then
    echo "run-tests.sh: the coordkv_static test binary still loads libcoordkv.so:" >&2
    ldd "$scratch/static.test" >&2
    exit 1
fi
go test -count=1 -tags coordkv_static ./...
