#!/bin/sh
# coordkv-pc.sh — prints a pkg-config file (coordkv.pc) for coordkv located under PREFIX.
#
#   scripts/coordkv-pc.sh PREFIX [LIBDIR [INCLUDEDIR]] > $LIBDIR/pkgconfig/coordkv.pc
#
# LIBDIR defaults to PREFIX/lib (where libcoordkv.so and libcoordkv.a are) and
# INCLUDEDIR to PREFIX/include (where coordkv.h is); pass them to point at a build tree,
# e.g. `scripts/coordkv-pc.sh "$PWD" "$PWD/target/release" "$PWD/include"`.
#
# Dynamic linking needs only -lcoordkv. Static linking (`pkg-config --static`) also needs
# what the Rust standard library and tokio call in the C library: Libs.private lists it.
# The list is what `cargo rustc --lib -- --print native-static-libs` reports for this
# crate on Linux/glibc; set COORDKV_NATIVE_STATIC_LIBS to override it on another target.
set -eu

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 PREFIX [LIBDIR [INCLUDEDIR]]" >&2
    exit 2
fi
prefix=$1
# Literal ${prefix}: pkg-config expands it, so the file can be relocated with --define-prefix.
# shellcheck disable=SC2016
libdir=${2:-'${prefix}/lib'}
# shellcheck disable=SC2016
includedir=${3:-'${prefix}/include'}
native_static_libs=${COORDKV_NATIVE_STATIC_LIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}

# The version is the crate's, read from the Cargo.toml next to this script.
manifest="$(cd "$(dirname "$0")/.." && pwd)/Cargo.toml"
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)
if [ -z "$version" ]; then
    echo "$0: cannot read the version from $manifest" >&2
    exit 1
fi

cat <<EOF
prefix=$prefix
libdir=$libdir
includedir=$includedir

Name: coordkv
Description: Cluster-coordination core (revisioned KV, watches) behind a C ABI
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lcoordkv
Libs.private: $native_static_libs
EOF
