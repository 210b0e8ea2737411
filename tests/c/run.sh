#!/usr/bin/env bash
# tests/c/run.sh — builds and runs the C and C++ tests against include/coordkv.h.
#
# Every tests/c/*.c (C99) and tests/c/*.cpp (C++17) is a test program, picked up by glob,
# compiled with warnings as errors into tests/c/build/ and linked against the library in
# $COORDKV_LIB_DIR (default <repo>/target/debug; build it first with `cargo build`).
# Some programs are built twice more, the ways users link: once through
# `pkg-config --cflags --libs coordkv` and once statically against libcoordkv.a with
# `pkg-config --static`, both from .pc files made by scripts/coordkv-pc.sh. The C
# quickstart (examples/quickstart.c) is built with the same flags and run on mem://.
#
# Each program then runs once per backend — mem://, plus the NATS server in
# $COORDKV_TEST_NATS_URL when set — as  <program> <store-url> <bucket-prefix> [args],
# first natively, then under valgrind, where any memory error or a definite/indirect
# leak fails the run. (No suppression file: the runtime's thread stacks and lazy statics
# are "possibly lost"/"still reachable", which are reported as neither.) The bucket
# prefix is unique per run so tests never meet each other's keys on a shared server.
#
# The concurrency tests of issue 9 are also built with ASan+UBSan (asan_<name>) and run
# natively with `ckv-test-asan-args`. The library itself is not instrumented; ASan watches
# the test's own memory, which is what a use-after-free of callback user data touches.
# Fork loops run only in the plain and valgrind builds: with GCC 12's ASan a forked child
# can deadlock inside ASan itself, whatever the library does.
#
# Markers in a test's source (see ckv_test.h): `ckv-test: mem-only`,
# `ckv-test-args: ...`, `ckv-test-valgrind-args: ...`, `ckv-test-asan-args: ...`.
#
# The last line is `N passed, M failed`; the exit status is non-zero on any failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lib_dir=${COORDKV_LIB_DIR:-$repo/target/debug}
build=$here/build
logs=$build/logs
cc=${CC:-gcc}
cxx=${CXX:-g++}
cflags=(-std=c99 -Wall -Wextra -Werror -pedantic -g)
cxxflags=(-std=c++17 -Wall -Wextra -Werror -pedantic -g)
includes=(-I"$repo/include" -I"$build")
# Tests that are also built through pkg-config, and statically against libcoordkv.a.
pkgconfig_tests=(test_api)
static_tests=(test_kv test_fork)
# Tests also built with -fsanitize=address,undefined.
asan_tests=(test_callback_close test_input_edges test_kv test_leases test_stress)
asan_flags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
# A watchdog, not a speed check: a hung test must end the suite with a failure.
run_timeout=${COORDKV_C_TEST_TIMEOUT:-900}
run_id="$(date +%s)_$$"

passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
    failed=$((failed + 1))
    failures+=("$1")
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/    | /' "$2" | tail -n 60; fi
}
finish() {
    for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

mkdir -p "$build" "$logs"

for lib in libcoordkv.so libcoordkv.a; do
    if [ ! -f "$lib_dir/$lib" ]; then
        fail "find $lib_dir/$lib (run cargo build first, or set COORDKV_LIB_DIR)"
    fi
done
[ "$failed" -eq 0 ] || finish

# The shared vectors (keys, and the KV scenarios), as C includes.
for pair in key_vectors:keys ops_vectors:ops; do
    name=${pair%%:*}
    source=tests/vectors/${pair#*:}.json
    if python3 "$here/gen_$name.py" "$repo/$source" "$build/$name.h" >"$logs/$name.log" 2>&1; then
        pass "generate build/$name.h from $source"
    else
        fail "generate build/$name.h from $source" "$logs/$name.log"
    fi
done

# Two pkg-config trees: the build tree as it is (dynamic), and an install-like prefix
# holding only the static archive, so `-lcoordkv` cannot pick the shared library there.
dynamic_pc=$build/pkgconfig-dynamic
static_prefix=$build/static-prefix
mkdir -p "$dynamic_pc" "$static_prefix/lib/pkgconfig"
ln -sfn "$repo/include" "$static_prefix/include"
ln -sf "$lib_dir/libcoordkv.a" "$static_prefix/lib/libcoordkv.a"
if "$repo/scripts/coordkv-pc.sh" "$repo" "$lib_dir" "$repo/include" >"$dynamic_pc/coordkv.pc" &&
    "$repo/scripts/coordkv-pc.sh" "$static_prefix" >"$static_prefix/lib/pkgconfig/coordkv.pc"; then
    pass "generate coordkv.pc with scripts/coordkv-pc.sh"
else
    fail "generate coordkv.pc with scripts/coordkv-pc.sh"
fi

# compile <output> <source> <extra flags...>: C or C++ by the source's extension.
compile() {
    local out=$1 src=$2
    shift 2
    if [[ $src == *.cpp ]]; then
        "$cxx" "${cxxflags[@]}" "${includes[@]}" "$src" -o "$out" "$@" -lpthread
    else
        "$cc" "${cflags[@]}" "${includes[@]}" "$src" -o "$out" "$@" -lpthread
    fi
}

# pc_compile <output> <source> <pkg-config dir> <pkg-config options...>: compiles with the
# flags `pkg-config <options> coordkv` gives there (and the library directory's rpath).
pc_compile() {
    local out=$1 src=$2 pc_dir=$3 pc_output pc_flags
    shift 3
    pc_output=$(PKG_CONFIG_PATH=$pc_dir pkg-config "$@" coordkv) &&
        read -r -a pc_flags <<<"$pc_output" &&
        compile "$out" "$src" "${pc_flags[@]}" -Wl,-rpath,"$lib_dir"
}

# static_compile <output> <source>: links libcoordkv.a through `pkg-config --static`, with
# the proof that the archive was linked in: no dependency on the shared library.
static_compile() {
    pc_compile "$1" "$2" "$static_prefix/lib/pkgconfig" --static --cflags --libs &&
        readelf -d "$1" >"$1.dynamic" &&
        ! grep -q 'libcoordkv\.so' "$1.dynamic"
}

# try_build <list> <what> <output> <source> <builder> [args...]: runs
# `<builder> <output> <source> [args...]` into build/logs/build_<output's name>.log and, when
# it builds, adds "output|source" to the array named <list>.
try_build() {
    local -n into=$1
    local what=$2 out=$3 src=$4 builder=$5 log
    shift 5
    log=$logs/build_$(basename "$out").log
    if [ ! -f "$src" ]; then
        fail "$what: $src is missing"
    elif "$builder" "$out" "$src" "$@" >"$log" 2>&1; then
        pass "$what"
        into+=("$out|$src")
    else
        fail "$what" "$log"
    fi
}

programs=()      # "binary|source" pairs to run
asan_programs=() # "binary|source" pairs, run natively only
linked=(-L"$lib_dir" -Wl,-rpath,"$lib_dir" -lcoordkv)
for src in "$here"/*.c "$here"/*.cpp; do
    [ -f "$src" ] || continue
    file=$(basename "$src")
    try_build programs "build $file" "$build/${file%.*}" "$src" compile "${linked[@]}"
done
for name in "${pkgconfig_tests[@]}"; do
    try_build programs "build $name.c with pkg-config --cflags --libs coordkv" \
        "$build/pkgconfig_$name" "$here/$name.c" pc_compile "$dynamic_pc" --cflags --libs
done
for name in "${static_tests[@]}"; do
    try_build programs "build $name.c statically against libcoordkv.a (pkg-config --static)" \
        "$build/static_$name" "$here/$name.c" static_compile
done
for name in "${asan_tests[@]}"; do
    try_build asan_programs "build $name.c with ASan+UBSan" "$build/asan_$name" "$here/$name.c" \
        compile "${asan_flags[@]}" "${linked[@]}"
done
# The quickstart a new user runs first must keep compiling cleanly and exit 0.
example=$repo/examples/quickstart.c
try_build programs "build examples/quickstart.c" "$build/quickstart" "$example" compile \
    "${linked[@]}"

backends=("mem://")
if [ -n "${COORDKV_TEST_NATS_URL:-}" ]; then
    backends+=("$COORDKV_TEST_NATS_URL")
elif [ "${COORDKV_REQUIRE_NATS:-0}" = 1 ]; then
    fail "COORDKV_REQUIRE_NATS=1 but COORDKV_TEST_NATS_URL is not set: the NATS runs cannot happen"
fi

have_valgrind=1
if ! command -v valgrind >/dev/null 2>&1; then
    have_valgrind=0
    fail "find valgrind (needed for the memory checks; apt-get install valgrind)"
fi
valgrind_flags=(--quiet --error-exitcode=1 --leak-check=full
    "--errors-for-leak-kinds=definite,indirect" "--show-leak-kinds=definite,indirect"
    --child-silent-after-fork=no)

marker() { sed -n "s/.*$1: *\(.*[^ ]\) *\$/\1/p" "$2" | head -n 1; }

for entry in "${programs[@]+"${programs[@]}"}"; do
    bin=${entry%%|*}
    src=${entry#*|}
    name=$(basename "$bin")
    args=$(marker ckv-test-args "$src")
    valgrind_args=$(marker ckv-test-valgrind-args "$src")
    [ -n "$valgrind_args" ] || valgrind_args=$args
    for url in "${backends[@]}"; do
        backend=${url%%:*}
        if [[ $src == "$example" ]]; then
            # The example takes no arguments and always runs on mem://.
            [ "$backend" = mem ] || continue
            run_args=()
            valgrind_run_args=()
        else
            if [ "$backend" != mem ] && grep -q 'ckv-test: mem-only' "$src"; then continue; fi
            # shellcheck disable=SC2206 # args are whitespace-separated on purpose
            run_args=("$url" "c${run_id}_${name}" $args)
            # shellcheck disable=SC2206
            valgrind_run_args=("$url" "v${run_id}_${name}" $valgrind_args)
        fi
        log=$logs/$name.$backend.log
        if timeout "$run_timeout" "$bin" "${run_args[@]+"${run_args[@]}"}" >"$log" 2>&1; then
            pass "$name on $backend"
        else
            fail "$name on $backend (exit $?)" "$log"
        fi
        [ "$have_valgrind" -eq 1 ] || continue
        log=$logs/$name.$backend.valgrind.log
        if timeout $((run_timeout * 2)) valgrind "${valgrind_flags[@]}" \
            "$bin" "${valgrind_run_args[@]+"${valgrind_run_args[@]}"}" >"$log" 2>&1; then
            pass "$name on $backend under valgrind"
        else
            fail "$name on $backend under valgrind (exit $?)" "$log"
        fi
    done
done

for entry in "${asan_programs[@]+"${asan_programs[@]}"}"; do
    bin=${entry%%|*}
    src=${entry#*|}
    name=$(basename "$bin")
    # shellcheck disable=SC2206
    asan_args=($(marker ckv-test-asan-args "$src"))
    log=$logs/$name.mem.log
    if ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        timeout "$run_timeout" "$bin" "mem://" "a${run_id}_${name}" \
        "${asan_args[@]+"${asan_args[@]}"}" >"$log" 2>&1; then
        pass "$name on mem (ASan+UBSan)"
    else
        fail "$name on mem (ASan+UBSan) (exit $?)" "$log"
    fi
done

finish
