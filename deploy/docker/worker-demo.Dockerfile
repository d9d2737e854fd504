# syntax=docker/dockerfile:1
# genhub-worker-demo: the dispatcher runtime with one provider adapter, the local, offline demo provider;
# gRPC health (50053) and Prometheus /metrics (9090). Only this provider's SDK is installed.
#
# Build from the repository root with `make images`, which passes BASE_IMAGE: the
# digest-pinned base recorded once in deploy/docker/images.json (docs/operations.md, "Images").
ARG BASE_IMAGE

# ---- build: a virtualenv with only this worker's packages ------------------------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The build backend our pyproject.toml files name, hash-checked, kept out of the image.
COPY deploy/docker/build-requirements.lock build-requirements.lock
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps -r build-requirements.lock
COPY requirements.lock scripts/lock_subset.py ./
COPY libs/protos libs/protos
COPY libs/common libs/common
COPY libs/egress libs/egress
COPY libs/media libs/media
COPY services/providers/sdk services/providers/sdk
COPY services/dispatcher services/dispatcher
COPY services/providers/demo services/providers/demo
# Third-party packages: the part of requirements.lock these packages need, hash-checked;
# then ours, built from source; `pip check` proves nothing is missing.
RUN python lock_subset.py requirements.lock libs/protos libs/common libs/egress libs/media \
        services/providers/sdk services/dispatcher services/providers/demo > runtime.lock \
    && python -m venv /opt/genhub \
    && /opt/genhub/bin/pip install --require-hashes --no-deps -r runtime.lock \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels \
        libs/protos libs/common libs/egress libs/media services/providers/sdk \
        services/dispatcher services/providers/demo \
    && /opt/genhub/bin/pip install --no-deps --no-index /wheels/*.whl \
    && /opt/genhub/bin/pip check

# ---- runtime: the base image, the virtualenv, a non-root user; nothing written at run time --
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="genhub-worker-demo" \
      org.opencontainers.image.description="GenHub worker for the demo provider"
# Bytecode was compiled at install; HOME points at /tmp, the pod's one writable (emptyDir) path.
# Two malloc arenas: glibc keeps one per allocating thread, and RSS then drifts (README, soak).
ENV PATH=/opt/genhub/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MALLOC_ARENA_MAX=2 \
    GENHUB_PROVIDER=demo
COPY --from=build /opt/genhub /opt/genhub
USER 65532:65532
EXPOSE 50053 9090
ENTRYPOINT ["genhub-dispatcher"]
