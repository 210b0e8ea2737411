#!/usr/bin/env bash
# The benchmark harness at tiny sizes, run by the test command so that the harness, the
# peers and the coordkv drivers never rot. It uses the library the test command just built
# (COORDKV_LIB_DIR) and fails if any driver cannot be built or any run fails. The full run
# (`make bench`) stays out of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py --smoke --require-all
