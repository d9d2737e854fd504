"""The container images, without a container engine: every Dockerfile listed in
deploy/docker/images.json whose packages exist in this tree parses, is multi-stage on the one
pinned base, copies only sources that exist (and that .dockerignore keeps), installs exactly its
packages from the lock file with hashes, runs as a non-root user, and starts a console script
one of its packages declares. Also the lock subset each image installs."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import lock_subset
import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LIST = json.loads((ROOT / "deploy/docker/images.json").read_text())
BASE = LIST["base_image"]
IMAGES: dict[str, dict[str, Any]] = LIST["images"]
# Images of packages that other work adds later are listed already; test those present.
PRESENT = {
    name: image
    for name, image in IMAGES.items()
    if all((ROOT / p / "pyproject.toml").is_file() for p in image["packages"])
}
DEV_TOOLS = {
    "pytest",
    "mypy",
    "ruff",
    "grpcio-tools",
    "schemathesis",
    "kubernetes-validate",
}


def pyproject(package: str) -> dict[str, Any]:
    with open(ROOT / package / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def parsed(image: dict[str, Any]) -> DockerfileParser:
    parser = DockerfileParser(path=str(ROOT / image["dockerfile"]))
    parser.build_args = {"BASE_IMAGE": BASE}
    return parser


def stages(parser: DockerfileParser) -> list[list[Any]]:
    """The instructions of each build stage."""
    result: list[list[Any]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def ignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_expected_images_are_listed_and_the_present_ones_are_tested() -> None:
    assert {"genhub-gateway", "genhub-taskstore", "genhub-worker-demo"} <= set(PRESENT)
    providers = {
        p.name
        for p in (ROOT / "services/providers").iterdir()
        if (p / "pyproject.toml").is_file() and p.name != "sdk"
    }
    listed = {image.get("provider") for image in IMAGES.values()}
    assert providers <= listed, "every provider package needs a worker image"
    assert {"demo", "volcengine", "openai"} <= listed


def test_the_base_image_is_pinned_by_digest() -> None:
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", BASE)


@pytest.mark.parametrize("name", sorted(PRESENT))
def test_dockerfile_builds_two_stages_from_the_pinned_base(name: str) -> None:
    parser = parsed(PRESENT[name])
    assert parser.is_multistage
    assert parser.parent_images == [BASE, BASE]
    build, runtime = stages(parser)
    assert build[0]["value"].endswith("AS build")
    copies_from_build = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert copies_from_build == ["--from=build /opt/genhub /opt/genhub"]


@pytest.mark.parametrize("name", sorted(PRESENT))
def test_copy_sources_exist_and_are_not_ignored(name: str) -> None:
    parser = parsed(PRESENT[name])
    patterns = ignored()
    for instruction in parser.structure:
        if instruction["instruction"] != "COPY" or instruction["value"].startswith("--from"):
            continue
        *sources, _ = shlex.split(instruction["value"])
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
            assert not any(source == p or source.startswith(p + "/") for p in patterns), (
                f"{name}: COPY {source} is excluded by .dockerignore"
            )


@pytest.mark.parametrize("name", sorted(PRESENT))
def test_it_installs_exactly_its_packages_with_hashes(name: str) -> None:
    image = PRESENT[name]
    instructions = parsed(image).structure
    copied = [
        shlex.split(i["value"])[0]
        for i in instructions
        if i["instruction"] == "COPY"
        and (ROOT / shlex.split(i["value"])[0] / "pyproject.toml").exists()
    ]
    assert copied == image["packages"]
    run = " ".join(i["value"] for i in instructions if i["instruction"] == "RUN")
    words = run.split()
    subset_args = words[words.index("lock_subset.py") + 2 : words.index(">")]
    assert subset_args == image["packages"]
    assert "--require-hashes --no-deps -r runtime.lock" in run
    assert "--require-hashes --no-deps -r build-requirements.lock" in run
    assert "pip check" in run


@pytest.mark.parametrize("name", sorted(PRESENT))
def test_it_runs_as_non_root_and_starts_a_declared_console_script(name: str) -> None:
    image = PRESENT[name]
    _, runtime = stages(parsed(image))
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users == ["65532:65532"]  # numeric, so Kubernetes can verify runAsNonRoot
    entrypoints = [json.loads(i["value"]) for i in runtime if i["instruction"] == "ENTRYPOINT"]
    assert entrypoints == [[image["entrypoint"]]]
    declared = {
        script
        for package in image["packages"]
        for script in pyproject(package)["project"].get("scripts", {})
    }
    assert image["entrypoint"] in declared
    env = " ".join(i["value"] for i in runtime if i["instruction"] == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    if "provider" in image:
        assert f"GENHUB_PROVIDER={image['provider']}" in env
        provider_package = pyproject(image["packages"][-1])
        entry_points = provider_package["project"]["entry-points"]["genhub.providers"]
        assert image["provider"] in entry_points


def test_the_lock_subset_is_closed_under_dependencies_and_leaves_dev_tools_out() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    for name, image in PRESENT.items():
        roots = [lock_subset.project_name(ROOT / p) for p in image["packages"]]
        chosen = {entry.name for entry in lock_subset.subset(lock, roots)}
        assert not chosen & DEV_TOOLS, name
        for package in image["packages"]:
            for dependency in pyproject(package)["project"]["dependencies"]:
                wanted = lock_subset.normalize(Requirement(dependency).name)
                assert wanted in chosen or wanted in roots, f"{name}: {wanted} missing"
        # Every installed requirement of every chosen package is chosen too.
        for distribution in chosen:
            for requirement in metadata.requires(distribution) or []:
                parsed_requirement = Requirement(requirement)
                marker = parsed_requirement.marker
                if marker is not None and not marker.evaluate({"extra": ""}):
                    continue
                dependency = lock_subset.normalize(parsed_requirement.name)
                assert dependency in chosen, f"{name}: {distribution} needs {dependency}"


def test_worker_images_carry_only_their_own_provider_sdk() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    demo = IMAGES["genhub-worker-demo"]
    roots = [lock_subset.project_name(ROOT / p) for p in demo["packages"]]
    chosen = {entry.name for entry in lock_subset.subset(lock, roots)}
    assert {"pillow", "av"} <= chosen
    assert not chosen & {"openai", "volcengine", "volcengine-python-sdk", "starlette", "pymongo"}


def test_make_images_says_clearly_when_there_is_no_container_engine() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "images.sh")],
        env={**os.environ, "CONTAINER_ENGINE": "genhub-no-such-engine"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "no container engine" in done.stderr
    assert "nothing was built" in done.stderr
