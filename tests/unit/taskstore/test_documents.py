"""Stored task documents read back exactly: the fast reader agrees with protobuf's own JSON
parser on every message a task document holds."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from genhub.common.ids import new_id
from genhub.taskstore import documents, lifecycle
from genhub.v1 import task_pb2

S = task_pb2

text = st.text(max_size=40)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
special = st.sampled_from([float("nan"), float("inf"), float("-inf")])

image = st.builds(
    S.ImageSpec,
    prompt=text,
    negative_prompt=text,
    size=text,
    n=int32,
    seed=int64,
    guidance_scale=st.one_of(finite, special),
    response_format=st.sampled_from(list(S.ImageResponseFormat.values())),
    reference_images=st.lists(text, max_size=3),
)
text_spec = st.builds(
    S.TextSpec,
    prompt=text,
    messages=st.lists(st.builds(S.ChatMessage, role=text, content=text), max_size=3),
    max_tokens=int32,
    temperature=finite,
)
result = st.builds(
    S.TaskResult,
    images=st.lists(
        st.builds(S.GeneratedImage, url=text, mime_type=text, width=int32, height=int32),
        max_size=3,
    ),
    video=st.builds(S.GeneratedVideo, url=text, duration_seconds=int32),
    text=text,
    provider_request_id=text,
)
usage = st.builds(S.Usage, input_tokens=int64, output_tokens=int64, images=int32)
error = st.builds(S.TaskError, code=text, message=text, retryable=st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.one_of(image, text_spec, result, usage, error))
def test_the_fast_reader_agrees_with_protobufs_parser(message: Any) -> None:
    stored = documents.as_dict(message)
    expected = json_format.ParseDict(stored, type(message)())
    got = type(message)()
    documents.parse_stored(stored, got)
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


def test_a_document_round_trips_to_the_same_task() -> None:
    task = S.Task(
        task_id=new_id(),
        user_id="alice",
        type=S.TASK_TYPE_IMAGE,
        provider="demo",
        model="demo-image",
        priority=S.PRIORITY_CRITICAL,
        image=S.ImageSpec(prompt="一只猫", size="512x512", seed=2**40),
        labels={"team": "a"},
    )
    now = documents.now()
    doc = lifecycle.new_document(documents.to_document(task), now)
    doc["result"] = documents.as_dict(S.TaskResult(text="x", provider_request_id="r"))
    back = documents.from_document(doc)
    assert back.image == task.image and back.labels == task.labels
    assert back.result.provider_request_id == "r"
    assert back.create_time.ToDatetime(tzinfo=now.tzinfo) == now
