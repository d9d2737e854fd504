"""The shared library's pure pieces: backoff, delay buckets, queue messages, ids, secrets."""

from __future__ import annotations

import random

import pytest

from genhub.common import topology
from genhub.common.errors import FailedPrecondition, NotFound
from genhub.common.ids import new_id
from genhub.common.secrets import SecretBox, mask
from genhub.common.topology import MessageKind, TaskMessage


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        exp = min(300.0, 2.0 ** (attempt - 1))
        delays = [topology.backoff_delay(attempt, rng=rng) for _ in range(200)]
        assert all(exp / 2 <= d <= exp for d in delays)
        assert max(delays) - min(delays) > exp / 4  # really jittered
    assert topology.backoff_delay(20, rng=rng) <= 300


def test_backoff_honours_retry_after() -> None:
    assert topology.backoff_delay(1, retry_after=7.0, rng=random.Random(1)) == 7.0
    # Retry-After wins over the backoff cap (RFC 9110 §10.2.3), up to an hour.
    assert topology.backoff_delay(1, retry_after=999.0, cap=300) == 999.0
    assert topology.backoff_delay(1, retry_after=86_400.0) == topology.MAX_RETRY_AFTER
    assert topology.backoff_delay(9, base=1.0, cap=30.0) <= 30.0


@pytest.mark.parametrize(
    ("seconds", "bucket"), [(0.05, 1), (1.9, 1), (2, 2), (3.9, 2), (4, 4), (100, 64), (9999, 512)]
)
def test_delay_buckets_hold_delays_within_a_factor_of_two(seconds: float, bucket: int) -> None:
    assert topology.delay_bucket(seconds) == bucket


def test_task_message_round_trip_and_rejects_foreign_bodies() -> None:
    message = TaskMessage("t1", MessageKind.POLL, "run-1", "token", handbacks=2)
    assert TaskMessage.decode(message.encode()) == message
    assert b"credentials" not in TaskMessage("t2").encode()
    bodies = (
        b"not json",
        b"{}",
        b'{"task_id": "x", "kind": "explode"}',
        b'{"task_id": 7, "kind": "run"}',
        b'{"task_id": "", "kind": "run"}',
        b"[1, 2]",
    )
    for body in bodies:
        with pytest.raises(ValueError, match="not a task message"):
            TaskMessage.decode(body)


def test_priorities_map_to_three_levels() -> None:
    from genhub.v1 import task_pb2

    assert topology.message_priority(task_pb2.PRIORITY_LOW) == 1
    assert topology.message_priority(task_pb2.PRIORITY_DEFAULT) == 2
    assert topology.message_priority(task_pb2.PRIORITY_UNSPECIFIED) == 2
    assert topology.message_priority(task_pb2.PRIORITY_CRITICAL) == topology.MAX_PRIORITY == 3


def test_ids_are_url_safe_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 26 and i.isalnum() and i.islower() for i in ids)
    # Millisecond prefixes never go backwards.
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)


def test_mask_shows_kind_and_tail_only() -> None:
    assert mask("sk-live-0123456789abcdef") == "sk-****cdef"
    assert mask("AKLTabcdefghijkl") == "****ijkl"
    assert mask("short") == "****"
    assert mask("") == ""
    assert "secret" not in mask("very-secret-access-key")


def test_secret_box_rotation() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt("sk-1")
    both = SecretBox([new, old])
    assert both.decrypt(token) == "sk-1"
    assert not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert SecretBox([new]).decrypt(rotated) == "sk-1"
    with pytest.raises(FailedPrecondition) as unreadable:
        SecretBox([new]).decrypt(token)
    assert unreadable.value.reason == "SECRET_UNREADABLE"
    assert SecretBox.from_setting(" , ") is None


def test_errors_carry_a_reason_named_after_the_class() -> None:
    assert NotFound("x").reason == "NOT_FOUND"
    assert FailedPrecondition("x", reason="TASK_FINISHED").reason == "TASK_FINISHED"
