#!/usr/bin/env bash
# buf breaking-change check: protos/ now against protos/ at a git ref (default HEAD).
#   scripts/breaking.sh [REF]
# The googleapis protos are not in git (scripts/protodeps.sh copies them from the pinned
# package), so the ref is checked out into a temporary worktree that gets the same copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ref=${1:-HEAD}
scripts/protodeps.sh
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach --quiet "$tmp/tree" "$ref"
mkdir -p "$tmp/tree/build"
cp -R build/protodeps "$tmp/tree/build/"
(cd "$tmp/tree" && "$root/.cache/bin/buf" build -o "$tmp/against.binpb")
.cache/bin/buf build -o "$tmp/now.binpb"
# Images carry no buf.yaml: name the rules here (the same FILE category buf.yaml sets).
.cache/bin/buf breaking "$tmp/now.binpb" --against "$tmp/against.binpb" \
  --config '{"version": "v2", "breaking": {"use": ["FILE"]}}'
echo "breaking: no breaking change against $ref"
