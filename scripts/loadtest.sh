#!/usr/bin/env bash
# Bounded headless load against a running gateway: a wrapper of `clip-loadtest` (clipbench/loadtest_cli.py;
# scenarios in clipbench/locustfile.py, summary in clipbench/loadtest.py). `scripts/loadtest.sh --help` for options.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
cd "$ROOT"
exec "$PY" -m clipbench.loadtest_cli "$@"
