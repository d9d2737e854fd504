"""The demo provider's call log: what fault tests count provider calls made in workers by."""

from __future__ import annotations

from pathlib import Path

import pytest

from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, RetryableError
from genhub.v1 import task_pb2
from tests.support.call_log import count, most_at_once, read_calls


async def test_each_call_logs_a_start_and_an_end_even_when_it_fails(tmp_path: Path) -> None:
    log = tmp_path / "calls.tsv"
    provider = DemoProvider(DemoSettings(call_log=str(log)))
    model = provider.catalogue()[2]
    ok = task_pb2.Task(task_id="t-ok", text=task_pb2.TextSpec(prompt="hi"))
    bad = task_pb2.Task(task_id="t-bad", text=task_pb2.TextSpec(prompt="x [fail:retryable:1]"))
    await provider.generate(Call(task=ok, model=model, attempt=1))
    with pytest.raises(RetryableError):
        await provider.generate(Call(task=bad, model=model, attempt=1))
    await provider.aclose()
    events = read_calls(log)
    assert [(e.event, e.task_id, e.attempt) for e in events] == [
        ("start", "t-ok", 1),
        ("end", "t-ok", 1),
        ("start", "t-bad", 1),
        ("end", "t-bad", 1),
    ]
    assert count(events, "start", ["t-ok", "t-bad", "t-none"]) == {
        "t-ok": 1,
        "t-bad": 1,
        "t-none": 0,
    }
    assert most_at_once(events, ["t-ok", "t-bad"]) == 1
