"""``genhubctl tasks``: read, list, follow, cancel and retry tasks through the public gRPC API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import grpc
import typer

from genhub.ctl.context import Ctl, as_json, console, ctl, emit_json, emit_line, run, table
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

app = typer.Typer(help="Tasks: get, list, watch, cancel, retry.", no_args_is_help=True)


class Kind(StrEnum):
    """Task types as the CLI spells them."""

    image = "image"
    video = "video"
    text = "text"


class Status(StrEnum):
    """Task statuses as the CLI spells them."""

    pending = "pending"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


def _name(enum: object, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()  # type: ignore[attr-defined]


def _row(task: task_pb2.Task) -> list[str]:
    return [
        task.task_id,
        _name(task_pb2.TaskStatus, task.status, "TASK_STATUS_"),
        _name(task_pb2.TaskType, task.type, "TASK_TYPE_"),
        f"{task.provider}/{task.model}",
        task.user_id,
        task.create_time.ToDatetime().isoformat(timespec="seconds") if task.create_time else "",
        task.error.message[:60] if task.HasField("error") else "",
    ]


COLUMNS = ["task", "status", "type", "provider/model", "user", "created", "error"]


def _stub(c: Ctl, channel: grpc.aio.Channel) -> task_service_pb2_grpc.TaskServiceAsyncStub:
    stub: task_service_pb2_grpc.TaskServiceAsyncStub = task_service_pb2_grpc.TaskServiceStub(
        channel
    )
    return stub


@app.command()
def get(ctx: typer.Context, task_id: str) -> None:
    """Show one task: status, attempts, error and result."""
    c = ctl(ctx)

    async def go() -> task_pb2.Task:
        async with c.channel() as channel:
            request = task_service_pb2.GetTaskRequest(task_id=task_id)
            return (await _stub(c, channel).GetTask(request, metadata=c.metadata)).task

    task = run(go())
    if c.json:
        emit_json(as_json(task))
        return
    table(f"task {task.task_id}", COLUMNS, [_row(task)])
    if task.HasField("result"):
        console.print_json(data=as_json(task.result))


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    user: Annotated[str, typer.Option(help="Only this user's tasks.")] = "",
    kind: Annotated[Kind | None, typer.Option("--type", help="Only tasks of this type.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only tasks in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Page size.")] = 20,
    page_token: Annotated[str, typer.Option(help="next_page_token of a previous page.")] = "",
) -> None:
    """List tasks, newest first (one page; the next page's token is printed)."""
    c = ctl(ctx)
    request = task_service_pb2.ListTasksRequest(
        user_id=user,
        type=task_pb2.TaskType.Value(f"TASK_TYPE_{kind.value.upper()}")
        if kind
        else task_pb2.TASK_TYPE_UNSPECIFIED,
        status=task_pb2.TaskStatus.Value(f"TASK_STATUS_{status.value.upper()}")
        if status
        else task_pb2.TASK_STATUS_UNSPECIFIED,
        page_size=limit,
        page_token=page_token,
    )

    async def go() -> task_service_pb2.ListTasksResponse:
        async with c.channel() as channel:
            return await _stub(c, channel).ListTasks(request, metadata=c.metadata)

    page = run(go())
    if c.json:
        emit_json(as_json(page))
        return
    table("tasks", COLUMNS, [_row(t) for t in page.tasks])
    if page.next_page_token:
        console.print(f"next page: --page-token {page.next_page_token}", highlight=False)


@app.command()
def watch(ctx: typer.Context, task_id: str) -> None:
    """Follow a task: one line per status change until it finishes (NDJSON with --json)."""
    c = ctl(ctx)

    async def go() -> None:
        async with c.channel() as channel:
            request = task_service_pb2.WatchTaskRequest(task_id=task_id)
            stream = _stub(c, channel).WatchTask(request, metadata=c.metadata)
            if c.json:
                async for change in stream:
                    emit_line(as_json(change.task))
                return
            with console.status(f"watching {task_id}", spinner="dots") as spinner:
                async for change in stream:
                    row = _row(change.task)
                    console.print(f"{row[0]}  {row[1]:<10} {row[6]}", highlight=False)
                    spinner.update(f"watching {task_id}: {row[1]}")

    run(go())


@app.command()
def cancel(ctx: typer.Context, task_id: str) -> None:
    """Cancel an unfinished task (an error once it has finished)."""
    c = ctl(ctx)

    async def go() -> task_pb2.Task:
        async with c.channel() as channel:
            request = task_service_pb2.CancelTaskRequest(task_id=task_id)
            return (await _stub(c, channel).CancelTask(request, metadata=c.metadata)).task

    task = run(go())
    if c.json:
        emit_json(as_json(task))
    else:
        console.print(f"cancelled {task.task_id}", highlight=False)


@app.command()
def retry(ctx: typer.Context, task_id: str) -> None:
    """Run a failed task again with a fresh attempt budget (RetryTask; an error unless it
    failed, or when it ran with its create request's own credentials)."""
    c = ctl(ctx)

    async def go() -> task_pb2.Task:
        async with c.channel() as channel:
            request = task_service_pb2.RetryTaskRequest(task_id=task_id)
            return (await _stub(c, channel).RetryTask(request, metadata=c.metadata)).task

    task = run(go())
    if c.json:
        emit_json(as_json(task))
    else:
        console.print(f"queued {task.task_id} again", highlight=False)
