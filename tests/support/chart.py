"""Rendering the Helm chart (deploy/helm/genhub) with the pinned helm, for tests over its YAML."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "genhub"
HELM = ROOT / ".cache" / "bin" / "helm"
VALUE_SETS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
RELEASE = "rel"
# The newest Kubernetes whose schemas kubernetes-validate ships (renders are cached per version).
LATEST_KUBERNETES = "1.37.0"
NAMESPACE = "genhub"


def helm(*args: str) -> str:
    """Run the pinned helm; its stdout. AssertionError (with helm's message) when it fails."""
    if not HELM.exists():
        raise AssertionError(f"{HELM} is missing: run `make tools` (scripts/tools.sh helm)")
    done = subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@functools.lru_cache(maxsize=64)
def _render(values: tuple[str, ...], sets: tuple[str, ...], kube_version: str) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--kube-version", kube_version]
    for name in values:
        args += ["-f", str(CHART / "ci" / name)]
    for item in sets:
        args += ["--set", item]
    return helm(*args)


def render(
    *values: str, sets: tuple[str, ...] = (), kube_version: str = LATEST_KUBERNETES
) -> list[dict[str, Any]]:
    """The objects ``helm template`` renders with these ci/ value files and ``--set`` items."""
    text = _render(tuple(values), tuple(sets), kube_version)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of ``kind`` (named ``name``, if given)."""
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name``."""
    found = find(objects, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def name(component: str) -> str:
    """The object name of a component in the test release."""
    return f"{RELEASE}-genhub-{component}"


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one container of a Deployment's pods."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def config(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    """The settings in a component's ConfigMap."""
    return dict(one(objects, "ConfigMap", name(component))["data"])
