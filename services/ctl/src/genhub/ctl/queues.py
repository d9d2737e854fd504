"""``genhubctl queues`` and ``genhubctl dlq``: provider queues and dead letters, through the
RabbitMQ management API (counts, peeks, purges), and AMQP plus the public API for requeues
(``requeue.py``: a failed task is retried, a letter leaves the queue only once its outcome is
confirmed).

Queue names come from ``genhub.common.topology``. A message body holds ids only; sealed
per-request credentials, if any, are never printed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import typer
from rich.progress import Progress

from genhub.common import topology
from genhub.ctl.context import Ctl, console, ctl, emit_json, run, table
from genhub.ctl.requeue import requeue_dead_letters

queues_app = typer.Typer(
    help="Provider queues: depth, consumers, rates.", invoke_without_command=True
)
dlq_app = typer.Typer(help="Dead-letter queues: list, show, requeue, purge.", no_args_is_help=True)

WORK_PREFIX = topology.work_queue("")
DEAD_PREFIX = topology.dead_queue("")
DELAY_PREFIX = topology.delay_queue("", 1).removesuffix(".1s")  # "genhub.delay."


def _client(c: Ctl) -> httpx.AsyncClient:
    # Credentials travel as basic auth, not in the URL (so they never reach a log line).
    url = urlsplit(c.rabbitmq_api.rstrip("/"))
    auth = (unquote(url.username), unquote(url.password or "")) if url.username else None
    host = url.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if url.port:
        netloc += f":{url.port}"
    base = urlunsplit((url.scheme, netloc, url.path, "", ""))
    return httpx.AsyncClient(base_url=base, auth=auth, timeout=10)


def _vhost(c: Ctl) -> str:
    return quote(c.vhost, safe="")


async def _queues(c: Ctl) -> list[dict[str, Any]]:
    async with _client(c) as http:
        response = await http.get(f"/queues/{_vhost(c)}")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


def _rate(queue: dict[str, Any], name: str) -> float:
    return float(queue.get("message_stats", {}).get(f"{name}_details", {}).get("rate", 0.0))


def summarise(queues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per provider: work queue depth, consumers and rates, delayed and dead counts."""
    rows: dict[str, dict[str, Any]] = {}
    for q in queues:
        name = str(q["name"])
        if name.startswith(WORK_PREFIX):
            row = rows.setdefault(name.removeprefix(WORK_PREFIX), {"delayed": 0, "dead": 0})
            row.update(
                ready=int(q.get("messages_ready", 0)),
                unacked=int(q.get("messages_unacknowledged", 0)),
                consumers=int(q.get("consumers", 0)),
                publish_rate=_rate(q, "publish"),
                deliver_rate=_rate(q, "deliver_get"),
                ack_rate=_rate(q, "ack"),
            )
    for q in queues:
        name = str(q["name"])
        if name.startswith(DEAD_PREFIX) and name.removeprefix(DEAD_PREFIX) in rows:
            rows[name.removeprefix(DEAD_PREFIX)]["dead"] = int(q.get("messages", 0))
        elif name.startswith(DELAY_PREFIX):
            provider = name.removeprefix(DELAY_PREFIX).rsplit(".", 1)[0]
            if provider in rows:
                rows[provider]["delayed"] += int(q.get("messages", 0))
    return [{"provider": p, **rows[p]} for p in sorted(rows)]


@queues_app.callback()
def queues(ctx: typer.Context) -> None:
    """Per provider: ready and unacked messages, consumers, publish/deliver/ack rates (per
    second, as the management API averages them), delayed retries and dead letters."""
    c = ctl(ctx)
    rows = summarise(run(_queues(c)))
    if c.json:
        emit_json(rows)
        return
    table(
        f"queues in vhost {c.vhost}",
        ["provider", "ready", "unacked", "consumers", "in/s", "out/s", "ack/s", "delayed", "dead"],
        [
            [
                r["provider"],
                r["ready"],
                r["unacked"],
                r["consumers"],
                f"{r['publish_rate']:.1f}",
                f"{r['deliver_rate']:.1f}",
                f"{r['ack_rate']:.1f}",
                r["delayed"],
                r["dead"],
            ]
            for r in rows
        ],
    )


@dlq_app.command("list")
def dlq_list(ctx: typer.Context) -> None:
    """Dead letters waiting per provider."""
    c = ctl(ctx)
    rows = [
        {
            "provider": r["provider"],
            "queue": topology.dead_queue(r["provider"]),
            "messages": r["dead"],
        }
        for r in summarise(run(_queues(c)))
    ]
    if c.json:
        emit_json(rows)
        return
    table("dead letters", ["provider", "queue", "messages"], [list(r.values()) for r in rows])


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    """What an operator needs of a dead message, its credentials left out."""
    try:
        body = json.loads(message.get("payload", ""))
    except ValueError:
        body = None
    properties = message.get("properties", {})
    deaths = (properties.get("headers") or {}).get("x-death") or [{}]
    if isinstance(body, dict):
        body.pop("credentials", None)
        described = {k: body.get(k) for k in ("task_id", "kind", "retry")}
    else:
        described = {"task_id": None, "kind": None, "retry": None, "undecodable": True}
    return described | {
        "reason": deaths[0].get("reason", ""),
        "deaths": deaths[0].get("count", 0),
        "message_id": properties.get("message_id", ""),
        "priority": properties.get("priority", 0),
    }


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    provider: str,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many messages to show.")] = 20,
) -> None:
    """Peek at a provider's dead letters (they stay in the queue)."""
    c = ctl(ctx)

    async def go() -> list[dict[str, Any]]:
        async with _client(c) as http:
            response = await http.post(
                f"/queues/{_vhost(c)}/{quote(topology.dead_queue(provider), safe='')}/get",
                json={"count": limit, "ackmode": "ack_requeue_true", "encoding": "auto"},
            )
            response.raise_for_status()
            return [_describe(m) for m in response.json()]

    rows = run(go())
    if c.json:
        emit_json(rows)
        return
    columns = ["task_id", "kind", "retry", "reason", "deaths", "message_id", "priority"]
    table(f"dead letters of {provider}", columns, [[r.get(k) for k in columns] for r in rows])


@dlq_app.command("requeue")
def dlq_requeue(
    ctx: typer.Context,
    provider: str,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all).")] = 0,
) -> None:
    """Give a provider's dead letters another go: a failed task is retried (RetryTask, a fresh
    attempt budget); a task still queued or running gets its message back; a finished or deleted
    task's letter is dropped; a letter that cannot be retried (undecodable, or the task ran with
    its request's own credentials) stays. Each letter leaves the queue only once its outcome is
    confirmed."""
    c = ctl(ctx)

    async def go() -> dict[str, int]:
        with Progress(console=console, disable=c.json, transient=True) as progress:
            bar = progress.add_task(f"requeueing {provider}", total=None)

            def advance(total: int) -> None:
                progress.update(bar, total=total, advance=1)

            return await requeue_dead_letters(c, provider, limit, advance)

    counts = run(go())
    if c.json:
        emit_json({"provider": provider, **counts})
    else:
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        console.print(f"dead letters of {provider}: {summary}", highlight=False)


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    provider: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every dead letter of a provider (asks first unless --yes)."""
    c = ctl(ctx)
    name = topology.dead_queue(provider)
    path = f"/queues/{_vhost(c)}/{quote(name, safe='')}"

    async def depth() -> int:
        async with _client(c) as http:
            response = await http.get(path)
            response.raise_for_status()
            return int(response.json().get("messages", 0))

    count = run(depth())
    if not yes:
        typer.confirm(f"delete {count} dead letter(s) from {name}?", abort=True)

    async def purge() -> None:
        async with _client(c) as http:
            (await http.delete(f"{path}/contents")).raise_for_status()

    run(purge())
    if c.json:
        emit_json({"provider": provider, "purged": count})
    else:
        console.print(f"purged {count} dead letter(s) of {provider}", highlight=False)
