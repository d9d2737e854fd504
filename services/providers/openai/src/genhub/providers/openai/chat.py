"""Text generation: ``POST /chat/completions`` through ``client.chat.completions.create``."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from genhub.providers.sdk import Call, ContentRefused, EmptyResult, Finished
from genhub.v1 import task_pb2


def request_params(call: Call, *, max_tokens_name: str) -> dict[str, Any]:
    """The ``chat.completions.create`` keyword arguments for a task.

    ``max_tokens_name`` is ``max_completion_tokens`` for OpenAI (``max_tokens`` is deprecated
    there and rejected by reasoning models) and ``max_tokens`` for OpenAI-compatible services,
    most of which know only that one.
    """
    spec = call.task.text
    if spec.messages:
        messages = [{"role": m.role, "content": m.content} for m in spec.messages]
    else:
        messages = [{"role": "user", "content": spec.prompt}]
    params: dict[str, Any] = {"model": call.task.model, "messages": messages}
    if spec.max_tokens:
        params[max_tokens_name] = spec.max_tokens
    if spec.HasField("temperature"):
        params["temperature"] = spec.temperature
    if spec.HasField("top_p"):
        params["top_p"] = spec.top_p
    return params


async def complete(client: openai.AsyncOpenAI, call: Call, *, max_tokens_name: str) -> Finished:
    """Run the task's chat completion; the first choice is the result.

    Raises:
        ContentRefused: the provider's content filter stopped the answer before any text.
        EmptyResult: a 200 without a choice or without text.
    """
    response: ChatCompletion = await client.chat.completions.create(
        **request_params(call, max_tokens_name=max_tokens_name)
    )
    request_id = response._request_id or ""
    provider = call.task.provider
    if not response.choices:
        raise EmptyResult(
            f"{provider}: chat/completions answered without choices", request_id=request_id
        )
    choice = response.choices[0]
    text = choice.message.content or ""
    if not text.strip():
        if choice.finish_reason == "content_filter":
            raise ContentRefused(
                f"{provider}: the answer was stopped by the content filter",
                code="content_filter",
                request_id=request_id,
            )
        raise EmptyResult(
            f"{provider}: chat/completions answered without text", request_id=request_id
        )
    usage = task_pb2.Usage()
    if response.usage is not None:
        usage.input_tokens = response.usage.prompt_tokens
        usage.output_tokens = response.usage.completion_tokens
        usage.total_tokens = response.usage.total_tokens
    return Finished(
        task_pb2.TaskResult(
            text=text, finish_reason=choice.finish_reason or "", provider_request_id=request_id
        ),
        usage,
    )
