"""Model catalogues are data: a JSON file in each provider package."""

from __future__ import annotations

import json
from importlib import resources

from google.protobuf import json_format

from genhub.v1 import provider_pb2


def load_catalogue(package: str, resource: str = "catalogue.json") -> list[provider_pb2.Model]:
    """Parse ``{"models": [...]}`` (proto3 JSON of ``genhub.v1.Model``) shipped in ``package``."""
    data = json.loads(resources.files(package).joinpath(resource).read_text(encoding="utf-8"))
    return [json_format.ParseDict(m, provider_pb2.Model()) for m in data["models"]]
