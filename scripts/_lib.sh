# Shared set-up for scripts/demo and scripts/test: a Python 3.12 venv in .venv
# with the pinned requirements, installed once per change of the pin files.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 "$HOME/.pyenv/versions/3.12"*/bin/python3.12; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "mailops needs Python 3.12 (see .python-version); set PYTHON=/path/to/python3.12" >&2
  return 1
}

# ensure_venv base|dev
ensure_venv() {
  local requirements="$ROOT/requirements/$1.txt" stamp
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  stamp="$VENV/.installed-$1-$(cat "$ROOT"/requirements/*.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
