"""The webhook transition hook's policy over an in-memory notifier: which transitions become
events, and that an event the broker did not take is kept, in order, and sent on a later beat."""

from __future__ import annotations

import pytest

from genhub.common.errors import BrokerError
from genhub.notifier import events
from genhub.taskstore.operations import Transition
from genhub.taskstore.webhook_hook import WebhookHook
from genhub.v1 import task_pb2

S = task_pb2


class MemoryNotifier:
    """Records what it was asked to queue; refuses while ``available`` is False."""

    def __init__(self) -> None:
        self.available = True
        self.sent: list[tuple[str, int]] = []

    async def notify(self, task: task_pb2.Task) -> bool:
        if not events.wanted(task):
            return False
        if not self.available:
            raise BrokerError("broker down")
        self.sent.append((task.task_id, task.status))
        return True


def _task(
    task_id: str,
    status: task_pb2.TaskStatus.ValueType,
    hook: task_pb2.WebhookEvents.ValueType | None = S.WEBHOOK_EVENTS_ALL,
) -> task_pb2.Task:
    task = S.Task(task_id=task_id, status=status)
    if hook is not None:
        task.webhook.url, task.webhook.events = "https://example.com/hook", hook
    return task


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


async def test_status_changes_of_tasks_with_a_webhook_become_events(
    notifier: MemoryNotifier,
) -> None:
    hook = WebhookHook(notifier)
    await hook(Transition("create", _task("a", S.TASK_STATUS_QUEUED)))
    await hook(Transition("claim", _task("a", S.TASK_STATUS_RUNNING)))
    # Renewals are not status changes: no second "running" event.
    for renewal in ("heartbeat", "resume", "record_job", "republish"):
        await hook(Transition(renewal, _task("a", S.TASK_STATUS_RUNNING)))
    await hook(Transition("complete", _task("a", S.TASK_STATUS_SUCCEEDED)))
    await hook(Transition("expire", _task("a", S.TASK_STATUS_EXPIRED)))
    await hook(Transition("complete", _task("b", S.TASK_STATUS_SUCCEEDED, hook=None)))
    await hook(Transition("delete", S.Task(task_id="a")))
    assert notifier.sent == [
        ("a", S.TASK_STATUS_QUEUED),
        ("a", S.TASK_STATUS_RUNNING),
        ("a", S.TASK_STATUS_SUCCEEDED),
        ("a", S.TASK_STATUS_EXPIRED),
    ]


async def test_terminal_only_webhooks_hear_the_end_only(notifier: MemoryNotifier) -> None:
    hook = WebhookHook(notifier)
    terminal = S.WEBHOOK_EVENTS_TERMINAL
    await hook(Transition("create", _task("a", S.TASK_STATUS_QUEUED, terminal)))
    await hook(Transition("claim", _task("a", S.TASK_STATUS_RUNNING, terminal)))
    await hook(Transition("fail", _task("a", S.TASK_STATUS_FAILED, terminal)))
    assert notifier.sent == [("a", S.TASK_STATUS_FAILED)]


async def test_unconfirmed_events_are_kept_in_order_and_sent_later(
    notifier: MemoryNotifier,
) -> None:
    hook = WebhookHook(notifier)
    notifier.available = False
    await hook(Transition("create", _task("a", S.TASK_STATUS_QUEUED)))
    notifier.available = True  # back, but the next event must not overtake the kept one
    await hook(Transition("claim", _task("a", S.TASK_STATUS_RUNNING)))
    assert (hook.unsent, notifier.sent) == (2, [])
    notifier.available = False
    assert await hook.flush() == 2
    notifier.available = True
    assert await hook.flush() == 0
    assert notifier.sent == [("a", S.TASK_STATUS_QUEUED), ("a", S.TASK_STATUS_RUNNING)]


async def test_a_full_backlog_drops_the_oldest_loudly(notifier: MemoryNotifier) -> None:
    hook = WebhookHook(notifier, max_unsent=2)
    notifier.available = False
    for task_id in "abc":
        await hook(Transition("complete", _task(task_id, S.TASK_STATUS_SUCCEEDED)))
    assert (hook.unsent, hook.dropped) == (2, 1)
    notifier.available = True
    await hook.close()
    assert [t for t, _ in notifier.sent] == ["b", "c"]
