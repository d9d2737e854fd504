#!/usr/bin/env bash
# `make run`: every GenHub service on this machine, until Ctrl-C (GENHUB_FAKE_PROVIDERS=1: with fake providers).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/devstack.py
