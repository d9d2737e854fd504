"""The adapter protocol: what a provider declares and the calls the dispatcher makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from genhub.v1 import provider_pb2, task_pb2


@dataclass(frozen=True)
class CallConfig:
    """The provider configuration for one call, already resolved by the dispatcher.

    ``source`` tells where the credentials came from: "request" (the create request),
    "stored" (ProviderService) or "deployment" (empty credentials: the adapter falls back to its
    own environment, e.g. ``ARK_API_KEY``). Adapters must never log these values.
    """

    source: str = "deployment"
    api_key: str = field(default="", repr=False)
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    api_base: str = ""
    default_model: str = ""
    timeout_seconds: float = 0.0
    max_retries: int = 0
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Call:
    """One attempt at a task, as the adapter sees it."""

    task: task_pb2.Task
    model: provider_pb2.Model
    attempt: int  # 1 for the first start; counts restarts after crashes and retries
    config: CallConfig = field(default_factory=CallConfig)


@dataclass(frozen=True)
class Finished:
    """The provider produced the output."""

    result: task_pb2.TaskResult
    usage: task_pb2.Usage


@dataclass(frozen=True)
class Submitted:
    """A long-running job was accepted; poll it after ``poll_after`` seconds."""

    job_id: str
    poll_after: float


@dataclass(frozen=True)
class Pending:
    """The job is still running; poll again after ``poll_after`` seconds."""

    poll_after: float


Outcome = Finished | Submitted | Pending


class Provider(Protocol):
    """A provider adapter. Methods raise :class:`ProviderError` subclasses on failure.

    Models whose catalogue entry has ``long_running`` are started with :meth:`submit` and
    finished by :meth:`poll`; every other model is run by :meth:`generate` in one call.
    """

    name: str
    display_name: str

    def catalogue(self) -> Sequence[provider_pb2.Model]:
        """The models this provider runs, with their allowed parameter values."""
        ...

    async def generate(self, call: Call) -> Finished:
        """Run a short task to completion."""
        ...

    async def submit(self, call: Call) -> Submitted:
        """Start a long-running job; must not wait for it."""
        ...

    async def poll(self, call: Call, job_id: str) -> Finished | Pending:
        """Check a job started by :meth:`submit`."""
        ...

    async def cancel(self, call: Call, job_id: str) -> None:
        """Cancel a job started by :meth:`submit`, best effort."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
