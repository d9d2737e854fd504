"""Doubao chat through Ark: ``POST /chat/completions`` (OpenAI-compatible; provider-apis.md §1.6).

The request is the task's prompt (as one user message) or its messages, with ``max_tokens``,
``temperature`` and ``top_p`` when given; the answer's text, finish reason and token usage are
recorded. The completion ``id`` is Ark's request id.
"""

from __future__ import annotations

from typing import Any

from volcenginesdkarkruntime import AsyncArk

from genhub.providers.sdk import Call, ContentRefused, EmptyResult, Finished
from genhub.providers.volcengine.ark import ArkClients, drop_none
from genhub.v1 import task_pb2


async def generate_text(ark: ArkClients, call: Call) -> Finished:
    """Answer a text task.

    Raises:
        ProviderError: the mapped Ark error; EmptyResult for a 200 without text;
            ContentRefused when the answer was withheld by the content filter.
    """
    spec = call.task.text
    messages = [{"role": m.role, "content": m.content} for m in spec.messages] or [
        {"role": "user", "content": spec.prompt}
    ]
    kwargs = drop_none(
        {
            "max_tokens": spec.max_tokens or None,
            "temperature": spec.temperature if spec.HasField("temperature") else None,
            "top_p": spec.top_p if spec.HasField("top_p") else None,
        }
    )

    async def request(client: AsyncArk, headers: dict[str, str]) -> Any:
        return await client.chat.completions.create(
            model=call.task.model, messages=messages, extra_headers=headers, **kwargs
        )

    completion, header_id = await ark.call(call, request)
    request_id = getattr(completion, "id", None) or header_id
    choices = getattr(completion, "choices", None) or []
    choice = choices[0] if choices else None
    message = getattr(choice, "message", None)
    text = (getattr(message, "content", None) or "") if message is not None else ""
    finish = str(getattr(choice, "finish_reason", None) or "")
    if not text.strip():
        if finish == "content_filter":
            raise ContentRefused(
                "Ark withheld the answer (finish_reason: content_filter)",
                code="content_filter",
                request_id=request_id,
            )
        raise EmptyResult(
            f"Ark answered 200 with no text for {call.task.model}", request_id=request_id
        )
    usage = getattr(completion, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    return Finished(
        task_pb2.TaskResult(text=text, finish_reason=finish, provider_request_id=request_id),
        task_pb2.Usage(
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
            total_tokens=int(getattr(usage, "total_tokens", 0) or 0)
            or prompt_tokens + completion_tokens,
        ),
    )
