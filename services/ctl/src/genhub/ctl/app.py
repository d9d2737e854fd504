"""The ``genhubctl`` application: global options, then one command group per area.

Every command answers in a table (``--json`` for scripts: one JSON document, or NDJSON for
``tasks watch``), exits 1 with a one-line error when a call fails, and has ``--help``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from genhub.ctl import admin, providers, queues, tasks
from genhub.ctl.context import Ctl

app = typer.Typer(
    name="genhubctl",
    help="Operate GenHub: tasks, queues, dead letters, providers, API keys and users.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tasks.app, name="tasks")
app.add_typer(queues.queues_app, name="queues")
app.add_typer(queues.dlq_app, name="dlq")
app.add_typer(providers.app, name="providers")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.users_app, name="users")


@app.callback()
def main(
    ctx: typer.Context,
    addr: Annotated[
        str, typer.Option(envvar="GENHUB_CTL_ADDR", help="The gateway's gRPC address.")
    ] = "127.0.0.1:50051",
    api_key: Annotated[
        str,
        typer.Option(
            envvar="GENHUB_API_KEY",
            help="API key sent as 'authorization: Bearer'; an admin key for keys and users.",
            show_default=False,
        ),
    ] = "",
    rabbitmq_api: Annotated[
        str,
        typer.Option(
            envvar="GENHUB_CTL_RABBITMQ_API",
            help="RabbitMQ management API base URL, credentials included.",
        ),
    ] = "http://guest:guest@127.0.0.1:15672/api",
    vhost: Annotated[
        str, typer.Option(envvar="GENHUB_CTL_VHOST", help="RabbitMQ vhost of GenHub's queues.")
    ] = "/",
    amqp_url: Annotated[
        str,
        typer.Option(envvar="GENHUB_AMQP_URL", help="AMQP URL, for dlq requeue."),
    ] = "amqp://guest:guest@127.0.0.1:5672/",
    redis_url: Annotated[
        str, typer.Option(envvar="GENHUB_REDIS_URL", help="Redis URL (breakers and limits).")
    ] = "redis://127.0.0.1:6379/0",
    redis_prefix: Annotated[
        str, typer.Option(envvar="GENHUB_EVENTS_PREFIX", help="GenHub's Redis key prefix.")
    ] = "genhub:",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Global options; every one also reads an environment variable."""
    ctx.obj = Ctl(addr, api_key, rabbitmq_api, vhost, amqp_url, redis_url, redis_prefix, json_out)
