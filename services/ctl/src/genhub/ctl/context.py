"""What every command needs: where GenHub and its infrastructure are, how to print, and one way
to run a command's coroutine with its failures turned into a one-line error and exit code 1."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import httpx
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

T = TypeVar("T")
EXIT_FAILED = 1


@dataclass(frozen=True)
class Ctl:
    """Global options (``genhubctl --help`` lists them with their environment variables)."""

    addr: str
    api_key: str
    rabbitmq_api: str
    vhost: str
    amqp_url: str
    redis_url: str
    redis_prefix: str
    json: bool

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying the API key, if one is set."""
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def channel(self) -> grpc.aio.Channel:
        """A channel to the gateway's gRPC API (use as ``async with``)."""
        return grpc.aio.insecure_channel(self.addr)


def ctl(ctx: typer.Context) -> Ctl:
    """The global options of this invocation."""
    found = ctx.find_root().obj
    assert isinstance(found, Ctl)
    return found


console = Console()
errors = Console(stderr=True)


def run(awaitable: Awaitable[T]) -> T:
    """Run a command's coroutine; a gRPC, HTTP or Redis failure exits 1 with one line."""

    async def wrapped() -> T:
        return await awaitable

    try:
        return asyncio.run(wrapped())
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name if exc.code() is not None else "UNKNOWN"
        errors.print(f"error: {code}: {exc.details()}", markup=False, highlight=False)
    except httpx.HTTPError as exc:
        errors.print(f"error: RabbitMQ management API: {exc}", markup=False, highlight=False)
    except (RedisError, OSError) as exc:
        errors.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
    raise typer.Exit(EXIT_FAILED)


def as_json(message: Message) -> dict[str, Any]:
    """A message in proto3 JSON (camelCase names, enums by name)."""
    return json_format.MessageToDict(message)


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def emit_line(value: Any) -> None:
    """One compact JSON object per line (NDJSON), flushed at once for streams."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on stdout."""
    out = Table(title=title, title_justify="left")
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    for index, column in enumerate(columns):
        # The first two columns (an id to copy, and its state) are never wrapped or shortened;
        # the others fold rather than lose characters on a narrow terminal.
        key = index < 2
        widest = max((len(r[index]) for r in cells), default=0) if key else None
        out.add_column(column, no_wrap=key, min_width=widest, overflow="fold")
    for row in cells:
        out.add_row(*row)
    console.print(out)
