#!/usr/bin/env bash
# The compatibility leg: the shared KV scenarios and suite, the NATS backend's own tests and
# the watch tests against the oldest supported server line, nats-server 2.10 (pinned
# 2.10.26). natsd.py provisions that version next to the main one, starts it on loopback
# for the shared suite, and exports NATS_SERVER_BIN so the tests that start their own
# servers (auth, TLS, faults, cluster) start 2.10.26 too. Any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=2.10.26
export COORDKV_REQUIRE_NATS=1
exec python3 tests/support/natsd.py run --version "$VERSION" -- \
  cargo test \
    --test ops_vectors \
    --test keys \
    --test store_suite \
    --test nats_interop \
    --test nats_auth \
    --test nats_tls \
    --test nats_faults \
    --test nats_cluster \
    --test nats_env \
    --test nats_watch \
    --test nats_watch_loss \
    --test leases \
    --test watch_hub \
    --test watch_guarantees \
    --test watch_callbacks \
    -- --test-threads=2
