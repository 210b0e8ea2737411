#!/usr/bin/env bash
# The Python binding's test run, called by scripts/test.sh (or by hand).
#
# 1. Finds libcoordkv: $COORDKV_LIB_DIR when given, else `cargo build` and target/debug.
#    The tests load exactly that file (COORDKV_LIB), never another copy.
# 2. Builds the wheel once into a temporary directory and checks that it is
#    platform-tagged, carries the library, and imports from the unpacked wheel alone.
# 3. Runs pytest -q (every KV test on mem://, and on NATS too when
#    COORDKV_TEST_NATS_URL is set); pytest's summary line is the last thing printed.
# Exits non-zero if the wheel check or any test failed. Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

case "$(uname -s)" in
  Darwin) library_file=libcoordkv.dylib ;;
  *) library_file=libcoordkv.so ;;
esac

if [[ -z "${COORDKV_LIB_DIR:-}" ]]; then
  (cd "$repo" && cargo build --quiet)
  COORDKV_LIB_DIR="$repo/target/debug"
fi
COORDKV_LIB_DIR="$(cd "$COORDKV_LIB_DIR" && pwd)"
export COORDKV_LIB_DIR
export COORDKV_LIB="$COORDKV_LIB_DIR/$library_file"
if [[ ! -f "$COORDKV_LIB" ]]; then
  echo "run-tests.sh: $COORDKV_LIB does not exist" >&2
  exit 2
fi

pip_install() {
  "$python" -m pip install --quiet --disable-pip-version-check "$@"
}
"$python" -c 'import pytest' 2>/dev/null || pip_install "pytest==9.2.0"
"$python" -c 'import pytest_timeout' 2>/dev/null || pip_install "pytest-timeout==2.4.0"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

wheel_status=0
check_wheel() {
  "$python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    "$here" -w "$scratch/wheel" >"$scratch/wheel.log" 2>&1 || {
    cat "$scratch/wheel.log" >&2
    echo "wheel check: FAILED to build the wheel" >&2
    return 1
  }
  # Unpack and import it from a directory outside the repository with COORDKV_LIB
  # unset, so only the library inside the wheel can be found.
  (cd "$scratch" && env -u COORDKV_LIB "$python" - "$scratch"/wheel/*.whl "$COORDKV_LIB" <<'PY'
import hashlib
import os
import subprocess
import sys
import zipfile

wheel, built_library = sys.argv[1], sys.argv[2]
name = os.path.basename(wheel)
assert not name.endswith("-none-any.whl"), f"{name} is not platform-tagged"
member = "coordkv/_lib/" + os.path.basename(built_library)
with zipfile.ZipFile(wheel) as archive:
    assert member in archive.namelist(), f"{member} is not in {name}"
    with open(built_library, "rb") as f:
        same = hashlib.sha256(archive.read(member)).digest() == hashlib.sha256(f.read()).digest()
    assert same, f"{member} in {name} differs from {built_library}"
    archive.extractall("unpacked")
probe = """
import coordkv
assert coordkv.library_path().startswith(%r), coordkv.library_path()
with coordkv.Store.open() as store:
    store.put("/w", "x")
    assert store.get("/w").value == b"x"
""" % os.path.abspath("unpacked")
subprocess.run([sys.executable, "-c", probe], check=True, env={**os.environ, "PYTHONPATH": "unpacked"})
print(f"wheel check: ok, {name} carries {member}")
PY
  )
}
check_wheel || wheel_status=1

cd "$here"
set +e
"$python" -m pytest -q "$@"
pytest_status=$?
set -e
if [[ $pytest_status -ne 0 ]]; then
  exit "$pytest_status"
fi
exit "$wheel_status"
