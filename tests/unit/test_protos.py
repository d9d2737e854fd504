"""The API descriptors: they load, every public RPC has an HTTP rule, and no two rules collide."""

from __future__ import annotations

import re
from typing import Any, cast

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from genhub.store.v1 import task_store_pb2
from genhub.v1 import provider_service_pb2, task_service_pb2, user_service_pb2

PUBLIC: list[ServiceDescriptor] = [
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    provider_service_pb2.DESCRIPTOR.services_by_name["ProviderService"],
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"],
]


def _rules(method: MethodDescriptor) -> list[http_pb2.HttpRule]:
    http_option = cast(Any, annotations_pb2.http)
    rule: http_pb2.HttpRule = method.GetOptions().Extensions[http_option]
    return [rule, *rule.additional_bindings] if rule.WhichOneof("pattern") else []


def _route(rule: http_pb2.HttpRule) -> tuple[str, str]:
    verb = rule.WhichOneof("pattern")
    assert verb is not None
    path = getattr(rule, verb)
    # Variables match any segment, so "/a/{x}" and "/a/{y}" are the same route.
    return verb.upper(), re.sub(r"\{[^}]+\}", "{}", path)


def test_descriptors_load_with_every_service() -> None:
    names = {s.full_name for s in PUBLIC}
    assert names == {"genhub.v1.TaskService", "genhub.v1.ProviderService", "genhub.v1.UserService"}
    store = task_store_pb2.DESCRIPTOR.services_by_name["TaskStoreService"]
    # The lifecycle is named operations; no generic transition is exposed.
    assert {m.name for m in store.methods} == {
        "CreateTask",
        "GetTask",
        "ListTasks",
        "ClaimTask",
        "RecordJob",
        "Heartbeat",
        "CompleteTask",
        "ScheduleRetry",
        "FailTask",
        "CancelTask",
        "RetryTask",
        "ExpireTask",
        "RerouteTask",
        "DeleteTask",
        "SearchTasks",
        "PutProvider",
        "ListProviders",
    }


def test_every_public_rpc_has_an_http_rule() -> None:
    missing = [m.full_name for s in PUBLIC for m in s.methods if not _rules(m)]
    assert missing == []


def test_no_two_http_rules_collide() -> None:
    seen: dict[tuple[str, str], str] = {}
    for service in PUBLIC:
        for method in service.methods:
            for rule in _rules(method):
                route = _route(rule)
                assert route not in seen, f"{method.full_name} and {seen[route]} share {route}"
                seen[route] = method.full_name


def test_task_routes_match_the_architecture() -> None:
    routes = {m.name: {_route(r) for r in _rules(m)} for m in PUBLIC[0].methods}
    assert routes["CreateImageTask"] == {("POST", "/api/v1/ai/image/task")}
    assert routes["GetTask"] == {
        ("GET", "/api/v1/ai/task/result/{}"),
        ("GET", "/api/v1/ai/tasks/{}"),
    }
    assert routes["CancelTask"] == {("POST", "/api/v1/ai/task/{}:cancel")}
    assert routes["WatchTask"] == {("GET", "/api/v1/ai/task/{}:watch")}
    assert routes["ListTasks"] == {("GET", "/api/v1/ai/tasks")}
    assert routes["DeleteTask"] == {("DELETE", "/api/v1/ai/task/{}")}
    assert routes["SearchTasks"] == {("GET", "/api/v1/ai/tasks:search")}
    # The image library: RPCs of their own, so the server can hold them to image tasks.
    assert routes["ListImages"] == {("GET", "/api/v1/images")}
    assert routes["GetImage"] == {("GET", "/api/v1/images/{}")}
    assert routes["DeleteImage"] == {("DELETE", "/api/v1/images/{}")}
    assert routes["SearchImages"] == {("GET", "/api/v1/images:search")}
