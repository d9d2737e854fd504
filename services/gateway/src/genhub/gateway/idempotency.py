"""An idempotency key is bound to the request it was first used with.

Task-store keeps one task per (user, ``idempotency_key``) and answers a repeat with the first
task (``created`` False). The gateway then compares that task with the one this request would
have created: an exact repeat (a client retrying after a lost answer) gets the first task; any
difference -- prompt or any other spec field, task type (text vs image route, gRPC or REST),
provider, model, fallbacks, priority, labels, per-request credentials or not -- is
ALREADY_EXISTS (HTTP 409) naming ``idempotency_key``, because answering with a task for another
request would be wrong either way (Stripe and the IETF Idempotency-Key draft answer 422/409
likewise). ``wait`` is not part of the request's identity: it only says how long this answer
may wait.
"""

from __future__ import annotations

from google.protobuf.message import Message

from genhub.common.errors import AlreadyExists
from genhub.v1 import task_pb2

# Task fields filled from a create request; any other field the new task sets is compared too.
REQUEST_FIELDS = (
    "user_id",
    "type",
    "provider",
    "model",
    "priority",
    "labels",
    "image",
    "video",
    "text",
    "request_credentials",
    "fallbacks",
)


def _only(task: task_pb2.Task, name: str) -> Message:
    projected: Message = task_pb2.Task()
    projected.CopyFrom(task)
    for field, _ in projected.ListFields():
        if field.name != name:
            projected.ClearField(field.name)
    return projected


def check_same_request(candidate: task_pb2.Task, stored: task_pb2.Task) -> None:
    """Raise AlreadyExists unless ``stored`` (the task the key already names) is what
    ``candidate`` (built from this request) would have been."""
    names = set(REQUEST_FIELDS) | {f.name for f, _ in candidate.ListFields()}
    names.discard("idempotency_key")
    differing = sorted(n for n in names if _only(candidate, n) != _only(stored, n))
    if differing:
        raise AlreadyExists(
            f"idempotency_key {candidate.idempotency_key!r} was already used for a different "
            f"request (task {stored.task_id}; it differs in {', '.join(differing)}); "
            "repeat the same request, or use a new key",
            reason="IDEMPOTENCY_KEY_REUSED",
            metadata={
                "field": "idempotency_key",
                "task_id": stored.task_id,
                "differs": ",".join(differing),
            },
        )
