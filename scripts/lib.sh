# Shared by scripts/run.sh and scripts/test.sh: a venv that installs itself, once per requirements change.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

ensure_venv() {  # ensure_venv requirements/<file>.txt
  local req="$ROOT/$1" stamp
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV ($("$PYTHON_BIN" --version))"
    "$PYTHON_BIN" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
  fi
  stamp="$VENV/.stamp-$(basename "$1" .txt)-$(cat "$ROOT"/requirements/*.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing $1 into $VENV (torch is large: the first time takes a few minutes)"
    "$VENV/bin/pip" install --progress-bar on -r "$req"
    touch "$stamp"
  fi
  # The project itself, editable (this checkout): console commands in .venv/bin, no sys.path tricks anywhere.
  # Redone only when pyproject.toml or the checkout's location changes; --no-deps: the pins are installed above.
  stamp="$VENV/.stamp-project-$( (cat "$ROOT/pyproject.toml"; echo "$ROOT") | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing this project (pip install -e . --no-deps) into $VENV"
    "$VENV/bin/pip" install --quiet --no-deps -e "$ROOT"
    rm -f "$VENV"/.stamp-project-*
    touch "$stamp"
  fi
  echo "==> installing tritonserver (nvidia-pytriton wheel, binary only) into ${TRITON_HOME:-$ROOT/.triton}"
  "$VENV/bin/python" "$ROOT/scripts/install_triton.py" >/dev/null
}
