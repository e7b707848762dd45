#!/usr/bin/env bash
# Creates .venv with Python 3.13 and installs requirements.txt (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  # .python-version lets pyenv's python3.13 shim resolve here; a plain install has python3.13.
  PY=$(command -v python3.13 || true)
  if [ -z "$PY" ] || ! "$PY" --version >/dev/null 2>&1; then
    echo "setup.sh: error: python3.13 not found; install Python 3.13 first" >&2
    exit 2
  fi
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
