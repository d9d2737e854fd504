#!/usr/bin/env bash
# Generates Python stubs (messages, gRPC, typed .pyi) from protos/ into libs/protos/src.
#   scripts/gen.sh            regenerate in place
#   scripts/gen.sh --check    fail if the committed stubs differ from what the protos generate
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=.venv/bin/python

# googleapis protos come from the pinned googleapis-common-protos package: no network at build time.
scripts/protodeps.sh

out=libs/protos/src
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

wkt=$("$py" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
mapfile -t protos < <(cd protos && find genhub -name '*.proto' | sort)

if [ "${1:-}" != "--check" ]; then
  find "$out/genhub/v1" "$out/genhub/store" -name '*_pb2*' -delete 2>/dev/null || true
fi
"$py" -m grpc_tools.protoc \
  -I protos -I build/protodeps -I "$wkt" \
  --plugin=protoc-gen-mypy=.venv/bin/protoc-gen-mypy \
  --plugin=protoc-gen-mypy_grpc=.venv/bin/protoc-gen-mypy_grpc \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out=quiet:"$out" --mypy_grpc_out=quiet:"$out" \
  "${protos[@]}"

if [ "${1:-}" = "--check" ]; then
  if ! diff -r -q -x '__pycache__' -x '__init__.py' -x 'py.typed' "$out/genhub" libs/protos/src/genhub; then
    echo "gen: the generated stubs in libs/protos/src are stale; run 'make gen' and commit" >&2
    exit 1
  fi
  echo "gen: stubs are up to date"
fi
