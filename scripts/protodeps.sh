#!/usr/bin/env bash
# Copies the googleapis protos our protos import (google/api/*) from the pinned
# googleapis-common-protos package in .venv into build/protodeps, for protoc and buf.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=$(.venv/bin/python -c 'import google.api.http_pb2 as m, os; print(os.path.dirname(m.__file__))')
mkdir -p build/protodeps/google/api
for f in annotations http field_behavior; do
  cp -p "$src/$f.proto" build/protodeps/google/api/
done
