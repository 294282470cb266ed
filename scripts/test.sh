#!/usr/bin/env bash
# Run the whole test suite (unit, integration against the real tritonserver, offline deploy checks).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv requirements/dev.txt
cd "$ROOT"
echo "==> ruff check (lint rules: pyproject.toml [tool.ruff.lint])"
"$VENV/bin/ruff" check .
echo "==> ruff format --check (style: pyproject.toml [tool.ruff])"
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/python" -m pytest "$@"
