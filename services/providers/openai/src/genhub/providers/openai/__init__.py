"""The OpenAI provider (images, chat, Sora videos) and the generic OpenAI-compatible provider.

Import the SDK as ``openai`` everywhere in this package: absolute imports resolve to the
``openai`` distribution, never to this package (``genhub.providers.openai``).
"""

from __future__ import annotations

from genhub.providers.openai.config import OpenAISettings
from genhub.providers.openai.provider import OpenAIProvider
from genhub.providers.sdk import load_catalogue

__all__ = ["OpenAIProvider", "OpenAISettings", "create_compatible_provider", "create_provider"]


def create_provider() -> OpenAIProvider:
    """Entry-point factory (``openai``): OpenAI with its catalogue, configured from
    ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``GENHUB_OPENAI_*``."""
    return OpenAIProvider(OpenAISettings(), models=load_catalogue("genhub.providers.openai"))


def create_compatible_provider(name: str) -> OpenAIProvider:
    """Compatible-API factory (``genhub.compatible_providers`` entry point ``openai``): a
    provider named ``name`` that speaks the OpenAI wire format at its stored ``api_base``.

    It declares no models: operators add them with UpsertModel
    (``PUT /api/v1/providers/{name}/models/{model}``).
    """
    return OpenAIProvider(
        OpenAISettings(), name=name, display_name=f"{name} (OpenAI-compatible)", compatible=True
    )
