"""The volcengine provider: routes each task to Ark or Jimeng by its model.

Routing rule (data, not code, decides the rest): a model whose id starts with ``jimeng_`` is a
Jimeng ``req_key`` and runs as a Visual API job; every other model (``doubao-seedream-*``,
``doubao-*`` chat models, ``doubao-seedance-*``, and ``ep-*`` endpoint ids) runs on Ark, by the
task's type: images and text in one call, videos as jobs. A model an operator adds through the
catalogue API is routed by the same rule with no code change.
"""

from __future__ import annotations

from collections.abc import Sequence

from genhub.providers.sdk import (
    Call,
    Finished,
    InvalidParameter,
    Pending,
    Submitted,
    load_catalogue,
)
from genhub.providers.volcengine import doubao, jimeng_jobs, seedance, seedream
from genhub.providers.volcengine.ark import ArkClients
from genhub.providers.volcengine.config import VolcengineSettings
from genhub.providers.volcengine.jimeng import JimengClients
from genhub.v1 import provider_pb2

JIMENG_PREFIX = "jimeng_"


def is_jimeng(model: str) -> bool:
    """Whether a model id is a Jimeng req_key (runs on the Visual API)."""
    return model.startswith(JIMENG_PREFIX)


class VolcengineProvider:
    """Implements :class:`genhub.providers.sdk.Provider` for Volcengine Ark and Jimeng."""

    name = "volcengine"
    display_name = "Volcengine (Ark: Seedream, Doubao, Seedance; Jimeng)"

    def __init__(self, settings: VolcengineSettings) -> None:
        self._settings = settings
        self._models = load_catalogue("genhub.providers.volcengine")
        self.ark = ArkClients(settings)
        self.jimeng = JimengClients(settings)

    def catalogue(self) -> Sequence[provider_pb2.Model]:
        """Seedream, Doubao, Seedance and Jimeng models (``catalogue.json``)."""
        return self._models

    async def generate(self, call: Call) -> Finished:
        """Seedream images and Doubao text, in one call each."""
        kind = call.task.WhichOneof("spec")
        if not is_jimeng(call.task.model):
            if kind == "image":
                return await seedream.generate_image(self.ark, call)
            if kind == "text":
                return await doubao.generate_text(self.ark, call)
        raise InvalidParameter(
            f"{call.task.model} runs as a submitted job: its catalogue entry needs longRunning",
            code="MODEL_NEEDS_LONG_RUNNING",
        )

    async def submit(self, call: Call) -> Submitted:
        """Start a Jimeng job or a Seedance video job."""
        poll_after = self._settings.poll_seconds
        if is_jimeng(call.task.model):
            return await jimeng_jobs.submit(self.jimeng, call, poll_after)
        if call.task.WhichOneof("spec") == "video":
            return await seedance.submit_video(self.ark, call, poll_after)
        raise InvalidParameter(
            f"{call.task.model} runs in one call: its catalogue entry must not be longRunning",
            code="MODEL_NOT_LONG_RUNNING",
        )

    async def poll(self, call: Call, job_id: str) -> Finished | Pending:
        """Check a job started by :meth:`submit`."""
        poll_after = self._settings.poll_seconds
        if is_jimeng(call.task.model):
            return await jimeng_jobs.poll(self.jimeng, call, job_id, poll_after)
        return await seedance.poll_video(self.ark, call, job_id, poll_after)

    async def cancel(self, call: Call, job_id: str) -> None:
        """Delete a Seedance job at Ark; Jimeng's Sync2Async API has no cancel, so a Jimeng job
        is left to finish (its result is never fetched)."""
        if not is_jimeng(call.task.model):
            await seedance.cancel_video(self.ark, call, job_id)

    async def aclose(self) -> None:
        """Close every client and the Jimeng threads."""
        await self.ark.aclose()
        await self.jimeng.aclose()
