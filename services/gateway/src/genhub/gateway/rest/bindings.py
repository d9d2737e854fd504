"""HTTP bindings read from the ``google.api.http`` options of the services' descriptors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from genhub.gateway.rest import fields
from genhub.gateway.rest.paths import PathTemplate
from genhub.v1 import (
    api_key_service_pb2,
    provider_service_pb2,
    task_service_pb2,
    user_service_pb2,
)

# The public API: every service here gets REST routes, whether or not the gRPC server
# implements it yet (an unregistered service answers UNIMPLEMENTED, i.e. HTTP 501).
PUBLIC_SERVICES: tuple[ServiceDescriptor, ...] = (
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    provider_service_pb2.DESCRIPTOR.services_by_name["ProviderService"],
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"],
    api_key_service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"],
)
TASK_MESSAGE = "genhub.v1.Task"


class BindingError(ValueError):
    """An HTTP rule that cannot be served (unknown field, client streaming, ...)."""


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of one RPC: verb and path template to request and response messages."""

    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    index: int
    request_class: type[Message]
    response_class: type[Message]

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, ``/package.Service/Method``."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        """Whether the RPC streams responses."""
        return bool(self.method.server_streaming)

    @property
    def creates_task(self) -> bool:
        """Whether this is a Create*Task RPC answering with the task: task creation is
        asynchronous, so REST answers 202 Accepted with links to follow the task."""
        if not self.method.name.startswith("Create") or not self.response_body:
            return False
        field = self.method.output_type.fields_by_name[self.response_body]
        return field.message_type is not None and field.message_type.full_name == TASK_MESSAGE

    @property
    def operation_id(self) -> str:
        """A unique name: ``Service_Method``, with ``_N`` for the N-th additional binding."""
        base = f"{self.method.containing_service.name}_{self.method.name}"
        return base if self.index == 0 else f"{base}_{self.index}"

    def __str__(self) -> str:
        return f"{self.http_method} {self.template.template} -> {self.method.full_name}"


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    """The ``google.api.http`` option of ``method``, or None."""
    extension = cast(Any, annotations_pb2.http)
    options = method.GetOptions()
    if not options.HasExtension(extension):
        return None
    rule: http_pb2.HttpRule = options.Extensions[extension]
    return rule


def load_bindings(services: Iterable[ServiceDescriptor] = PUBLIC_SERVICES) -> list[Binding]:
    """Every HTTP binding (primary and additional) of every method of ``services``."""
    bindings: list[Binding] = []
    for service in services:
        for method in service.methods:
            rule = http_rule(method)
            if rule is None:
                continue
            rules = [rule, *rule.additional_bindings]
            for index, each in enumerate(rules):
                if index and each.additional_bindings:
                    raise BindingError(f"{method.full_name}: additional bindings cannot nest")
                bindings.append(_binding(method, each, index))
    return bindings


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule, index: int) -> Binding:
    if method.client_streaming:
        raise BindingError(f"{method.full_name}: client-streaming RPCs have no REST mapping")
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise BindingError(f"{method.full_name}: HTTP rule {index} has no verb")
    if pattern == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    else:
        verb, path = pattern.upper(), getattr(rule, pattern)
    template = PathTemplate.parse(path)
    request = method.input_type
    for variable in template.variables:
        try:
            chain = fields.resolve(request, variable.field_path)
        except KeyError as exc:
            raise BindingError(f"{method.full_name}: path variable {exc}") from None
        leaf = chain[-1]
        if fields.is_repeated(leaf) or not fields.is_scalar_like(leaf):
            raise BindingError(f"{method.full_name}: {variable.field_path} is not a scalar")
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise BindingError(f"{method.full_name}: body field {rule.body!r} does not exist")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise BindingError(f"{method.full_name}: response_body {rule.response_body!r} unknown")
    return Binding(
        method=method,
        http_method=verb,
        template=template,
        body=rule.body,
        response_body=rule.response_body,
        index=index,
        request_class=message_factory.GetMessageClass(request),
        response_class=message_factory.GetMessageClass(method.output_type),
    )
