#!/usr/bin/env bash
# Creates .venv with every pinned Python package (requirements.lock) and our packages editable.
# Idempotent and quick when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

uv_version=0.13.8
bootstrap=.cache/bootstrap
if ! "$bootstrap/bin/uv" --version 2>/dev/null | grep -q " $uv_version"; then
  echo "install: bootstrapping uv $uv_version into $bootstrap"
  python3.11 -m venv "$bootstrap"
  "$bootstrap/bin/pip" install --quiet "uv==$uv_version"
fi
uv=$bootstrap/bin/uv

if [ ! -x .venv/bin/python ]; then
  "$uv" venv --quiet --python python3.11 .venv
fi
VIRTUAL_ENV=$root/.venv "$uv" pip sync --quiet requirements.lock
