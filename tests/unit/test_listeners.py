"""Listener addresses as one kind: every service's listeners are settings that default to all
interfaces (what a pod needs), are validated at start naming the variable, and the metrics
listener binds what it is given."""

from __future__ import annotations

import socket

import httpx
import pytest
from pydantic_settings import BaseSettings

from genhub.common.metrics import start_metrics_server
from genhub.common.settings import ALL_INTERFACES, load_settings, split_address
from genhub.dispatcher.config import DispatcherSettings
from genhub.gateway.config import GatewaySettings
from genhub.notifier.config import NotifierSettings
from genhub.taskstore.config import TaskStoreSettings

SERVICES: list[type[BaseSettings]] = [
    GatewaySettings,
    TaskStoreSettings,
    DispatcherSettings,
    NotifierSettings,
]


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
def test_every_listener_defaults_to_all_interfaces(settings: type[BaseSettings]) -> None:
    listeners = {
        name: field.default
        for name, field in settings.model_fields.items()
        if name.endswith("_listen")
    }
    assert "metrics_listen" in listeners
    assert len(listeners) >= 2  # its API or health listener, and metrics
    for name, default in listeners.items():
        host, port = split_address(default)
        assert host == ALL_INTERFACES, f"{settings.__name__}.{name} = {default}"
        assert port > 0


@pytest.mark.parametrize("address", ["9090", "host:port", "::1:9090", "0.0.0.0:70000", "[::1]9090"])
def test_a_malformed_listener_stops_start_up_naming_the_variable(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENHUB_METRICS_LISTEN", address)
    with pytest.raises(SystemExit, match="GENHUB_METRICS_LISTEN"):
        load_settings(GatewaySettings)


def test_ipv6_and_empty_listeners_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENHUB_GATEWAY_LISTEN", "[::]:50051")
    monkeypatch.setenv("GENHUB_METRICS_LISTEN", "")
    settings = load_settings(GatewaySettings)
    assert split_address(settings.gateway_listen) == ("::", 50051)
    assert start_metrics_server(settings.metrics_listen) is None


async def test_the_metrics_listener_serves_on_the_address_given() -> None:
    server = start_metrics_server("127.0.0.1:0")
    assert server is not None
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            reply = await http.get(f"http://127.0.0.1:{server.port}/metrics")
        assert reply.status_code == 200
        assert "# TYPE grpc_server_handled_total counter" in reply.text
    finally:
        server.close()


def test_a_metrics_port_in_use_names_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot serve metrics on {address}"):
            start_metrics_server(address)
