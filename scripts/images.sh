#!/usr/bin/env bash
# Build GenHub's container images (`make images`), one per service and one worker image per
# provider, as listed in deploy/docker/images.json. Images whose package directory does not
# exist in this tree are skipped, named.
#
#   scripts/images.sh [NAME...]        (default: every image)
#
#   CONTAINER_ENGINE   docker or podman (default: whichever answers `info`)
#   IMAGE_REPOSITORY   prefix of the image names (default: genhub)
#   IMAGE_TAG          tag (default: the git commit, with -dirty for local changes)
#
# The base image is pinned by digest in deploy/docker/images.json. While that file still holds
# the all-zero placeholder digest, this script pulls the base tag, records the digest it
# resolves to there, and asks you to commit it (docs/operations.md, "Images").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIST="$ROOT/deploy/docker/images.json"
PLACEHOLDER="sha256:0000000000000000000000000000000000000000000000000000000000000000"

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 1; }

engine() {
    local candidate why
    for candidate in ${CONTAINER_ENGINE:-docker podman}; do
        command -v "$candidate" >/dev/null || continue
        if why="$("$candidate" info 2>&1 >/dev/null)"; then
            printf '%s\n' "$candidate"
            return 0
        fi
        log "$candidate is installed but no container engine answers it: ${why%%$'\n'*}"
    done
    die "no container engine: install and start Docker or Podman (or set CONTAINER_ENGINE) to build images; nothing was built"
}

json() { python3 -c "import json,sys; d=json.load(open('$LIST')); $1" "${@:2}"; }

pin_base() {
    local engine="$1" base tag digest
    base="$(json 'print(d["base_image"])')"
    [[ "$base" == *"@$PLACEHOLDER" ]] || { printf '%s\n' "$base"; return 0; }
    tag="${base%@*}"
    log "base image $tag has the placeholder digest; resolving it"
    "$engine" pull "$tag" >&2
    digest="$("$engine" image inspect --format '{{index .RepoDigests 0}}' "$tag")"
    [[ "$digest" == *@sha256:* ]] || die "could not read the digest of $tag (got '$digest')"
    base="$tag@${digest#*@}"
    json 'd["base_image"]=sys.argv[1]; open(sys.argv[2],"w").write(json.dumps(d, indent=2)+"\n")' \
        "$base" "$LIST"
    log "pinned $base in deploy/docker/images.json: review and commit it"
    printf '%s\n' "$base"
}

main() {
    cd "$ROOT"
    local engine base repository tag name dockerfile missing
    engine="$(engine)"
    base="$(pin_base "$engine")"
    repository="${IMAGE_REPOSITORY:-genhub}"
    tag="${IMAGE_TAG:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)}"
    local -a names=("$@")
    ((${#names[@]})) || mapfile -t names < <(json 'print("\n".join(d["images"]))')
    for name in "${names[@]}"; do
        dockerfile="$(json 'print(d["images"][sys.argv[1]]["dockerfile"])' "$name")" ||
            die "$name is not in deploy/docker/images.json"
        missing="$(json 'import os; print(" ".join(p for p in d["images"][sys.argv[1]]["packages"] if not os.path.isfile(p+"/pyproject.toml")))' "$name")"
        if [[ -n "$missing" ]]; then
            log "skipping $name: not in this tree: $missing"
            continue
        fi
        log "building $repository/$name:$tag ($dockerfile)"
        "$engine" build --file "$dockerfile" --build-arg "BASE_IMAGE=$base" \
            --tag "$repository/$name:$tag" .
    done
}

main "$@"
