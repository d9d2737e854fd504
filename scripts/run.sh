#!/usr/bin/env bash
# `make run`: every GenHub service on this machine with the demo provider, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/devstack.py
