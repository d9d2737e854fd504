"""Validation of a create request's ``fallbacks``: the providers and models that may serve the
task while the requested model's circuit breaker is open (the worker re-routes it, see
``genhub.dispatcher.breaker_hook``). Each is checked now, so a re-routed task never fails for a
reason the client could have been told at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genhub.common.errors import FailedPrecondition, InvalidArgument
from genhub.gateway.validation import Violations, resolve_model
from genhub.v1 import provider_pb2, task_pb2

MAX_FALLBACKS = 3


def check_fallbacks(
    v: Violations,
    providers: Mapping[str, provider_pb2.Provider],
    request: Any,
    kind: str,
    task_type: task_pb2.TaskType.ValueType,
    check_spec: Callable[[Violations, Any, provider_pb2.Model], None],
) -> None:
    """Add a violation naming ``fallbacks`` or ``fallbacks[i]`` for each rule a fallback breaks:
    at most :data:`MAX_FALLBACKS`; none with per-request credentials (they are one provider's);
    each a known, enabled provider with a model of the task's type, neither the requested model
    nor a repeat; and the request's spec valid for that model too (sizes, durations, prompt
    length differ between models)."""
    fallbacks = list(request.fallbacks)
    if not fallbacks:
        return
    if len(fallbacks) > MAX_FALLBACKS:
        v.add("fallbacks", f"has {len(fallbacks)} entries; at most {MAX_FALLBACKS} are allowed")
    credentials = request.credentials
    if credentials.api_key or credentials.access_key_id or credentials.secret_access_key:
        v.add(
            "fallbacks",
            "cannot be combined with credentials: the credentials belong to the requested "
            "provider, so the task could not run anywhere else",
        )
    seen = {(request.provider, request.model): "the requested model"}
    for index, fallback in enumerate(fallbacks[:MAX_FALLBACKS]):
        path = f"fallbacks[{index}]"
        key = (fallback.provider, fallback.model)
        if key in seen:
            v.add(path, f"{fallback.provider}/{fallback.model} repeats {seen[key]}")
            continue
        seen[key] = path
        try:
            model = resolve_model(providers, fallback.provider, fallback.model, task_type)
        except InvalidArgument as exc:
            for violation in exc.violations:
                v.add(f"{path}.{violation.field}", violation.description)
            continue
        except FailedPrecondition as exc:
            v.add(f"{path}.provider", exc.message)
            continue
        spec_rules = Violations()
        check_spec(spec_rules, getattr(request, kind), model)
        for violation in spec_rules.items:
            v.add(
                path,
                f"{violation.field} is not valid for {fallback.provider}/{fallback.model}: "
                f"{violation.description}",
            )
