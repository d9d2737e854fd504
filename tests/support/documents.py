"""Task documents written straight into the database, for states the API cannot reach quickly
(a run whose worker died, a task written by an older version)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from genhub.common.ids import new_id
from genhub.taskstore import documents, lifecycle
from genhub.v1 import task_pb2


async def insert_task(
    mongo: AsyncMongoClient[dict[str, Any]],
    database: str,
    prompt: str = "p",
    **fields: Any,
) -> str:
    """Insert a demo text task's document with ``fields`` overriding the lifecycle's; its id."""
    task = task_pb2.Task(
        task_id=new_id(),
        type=task_pb2.TASK_TYPE_TEXT,
        provider="demo",
        model="demo-text",
        text=task_pb2.TextSpec(prompt=prompt),
    )
    doc = lifecycle.new_document(documents.to_document(task), documents.now())
    doc.update(fields)
    await mongo[database]["tasks"].insert_one(doc)
    return task.task_id
