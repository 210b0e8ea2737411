#!/usr/bin/env bash
# The one test command (README: `make test`; .ci/run calls it). It installs what a fresh
# machine of this kind lacks, then runs every check: format, lints, the header drift test,
# Rust tests, C/C++ tests under valgrind, pytest and go test — the KV suites on mem:// and on a
# real nats-server (pinned, started on loopback by tests/support/natsd.py, always stopped) —
# a smoke run of the benchmark harness, the examples, and the NATS tests again on
# nats-server 2.10.26.
# Any failing stage fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

stage() { printf '\n=== %s\n' "$*"; }
failures=()
run_stage() {
  local name=$1; shift
  stage "$name"
  if "$@"; then echo "--- $name: ok"; else echo "--- $name: FAILED"; failures+=("$name"); fi
}

stage "install prerequisites"
bash scripts/install-deps.sh
export PATH="$ROOT/.venv/bin:$PATH"

export COORDKV_LIB_DIR="$ROOT/target/debug"
# The build must not rewrite the committed header: tests/header.rs compares the two.
export COORDKV_CHECK_HEADER=1
export COORDKV_REQUIRE_NATS=1

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --all-targets -- -D warnings
stage "cargo build"
cargo build --lib

# Everything below runs with a NATS server up; natsd.py exports COORDKV_TEST_NATS_URL.
python3 tests/support/natsd.py run -- bash -c '
  set -u
  failed=0
  step() { name=$1; shift; printf "\n=== %s\n" "$name"; if "$@"; then echo "--- $name: ok"; else echo "--- $name: FAILED"; failed=$((failed+1)); fi; }
  step "cargo test" cargo test -- --test-threads=2
  step "C and C++ tests (+valgrind)" bash tests/c/run.sh
  step "python binding" bash bindings/python/run-tests.sh
  step "go binding" bash bindings/go/run-tests.sh
  step "bench smoke" bash bench/smoke.sh
  exit $failed
' || failures+=("suites with NATS")

# The examples as the README runs them (mem://).
run_stage "examples" bash scripts/test-examples.sh

# The 2.10 floor: the shared suite and the NATS tests again, on nats-server 2.10.26.
run_stage "NATS 2.10.26 leg" bash scripts/test-nats-2.10.sh

if [ ${#failures[@]} -ne 0 ]; then
  printf '\ntest.sh: FAILED stages: %s\n' "${failures[*]}"
  exit 1
fi
printf '\ntest.sh: every stage passed\n'
