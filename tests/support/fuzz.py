"""A seeded schemathesis run over every operation of an OpenAPI document against a live server.

``fuzz`` runs in a worker process (see ``run_modes``): schemathesis and hypothesis spend most
of the time generating cases, which would otherwise share one interpreter lock with the server
under test when that runs in the test's own process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SCHEMA_CHECKS = [
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
    response_headers_conformance,
]
# Requests the document says are invalid (negative mode) must also be refused with a 4xx.
NEGATIVE_CHECKS = [*SCHEMA_CHECKS, negative_data_rejection]


@dataclass
class FuzzReport:
    """Failures (one line each) and how many cases ran per operation."""

    mode: str
    failures: list[str] = field(default_factory=list)
    cases: dict[str, int] = field(default_factory=dict)


def fuzz(
    document: dict[str, Any],
    base_url: str,
    mode: str,
    max_examples: int,
    seed: int,
    implemented_tags: Sequence[str],
) -> FuzzReport:
    """Up to ``max_examples`` cases per operation in ``mode`` ("positive" or "negative").

    Negative mode runs only operations with a body or query parameters: where the only inputs
    are free-form path strings, no request is invalid. A 5xx is a failure, except 501 from an
    operation whose service (tag) is not in ``implemented_tags``.
    """
    generation = GenerationMode(mode)
    schema = schemathesis.openapi.from_dict(document)
    report = FuzzReport(mode)
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            raw = operation.definition.raw
            if generation.is_negative and not _has_invalid_inputs(raw):
                continue
            tags = set(raw.get("tags", []))
            allowed = set() if tags <= set(implemented_tags) else {501}
            counter = [0]
            run = _runner(operation, generation, base_url, session, allowed, counter)
            run = hypothesis.seed(seed)(
                hypothesis.settings(
                    max_examples=max_examples,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
                    suppress_health_check=list(HealthCheck),
                )(run)
            )
            failure = _first_failure(run)
            report.cases[operation.label] = counter[0]
            if failure:
                report.failures.append(f"{operation.label} ({mode}): {failure}")
    return report


def _has_invalid_inputs(raw: dict[str, Any]) -> bool:
    query = [p for p in raw.get("parameters", []) if p.get("in") == "query"]
    return bool(query) or "requestBody" in raw


def _runner(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    allowed: set[int],
    counter: list[int],
) -> Callable[[], None]:
    checks = NEGATIVE_CHECKS if mode.is_negative else SCHEMA_CHECKS

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        counter[0] += 1
        response = case.call(base_url=base_url, session=session, timeout=30)
        case.validate_response(response, checks=checks)
        status = response.status_code
        assert status < 500 or status in allowed, f"{status}: {response.text[:300]}"

    return run


def _first_failure(run: Callable[[], None]) -> str:
    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
        return "".join(traceback.format_exception_only(exc)).strip()
    return ""


async def run_modes(
    document: dict[str, Any],
    base_url: str,
    *,
    max_examples: int,
    seed: int,
    implemented_tags: Sequence[str],
) -> list[FuzzReport]:
    """Positive and negative runs side by side, each in its own process (spawned: the test
    process has gRPC threads, which fork would copy half-alive)."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        runs = [
            loop.run_in_executor(
                pool, fuzz, document, base_url, mode, max_examples, seed, list(implemented_tags)
            )
            for mode in ("positive", "negative")
        ]
        return list(await asyncio.gather(*runs))
