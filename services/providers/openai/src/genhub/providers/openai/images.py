"""Image generation: ``POST /images/generations`` through ``client.images.generate``.

GPT image models (``gpt-image-*``) always answer base64 and reject ``response_format``;
DALL·E models (and, by default, OpenAI-compatible services) take ``response_format`` and answer
a URL (valid for 60 minutes at OpenAI) or base64. When a task asked for a URL and the provider
gave bytes, the image is returned as a ``data:`` URL, as the demo provider does, until the
media store keeps provider media (see ``docs/providers-openai.md``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import openai
from openai.types import ImagesResponse

from genhub.providers.sdk import BadOutput, Call, EmptyResult, Finished, InvalidParameter
from genhub.v1 import task_pb2

_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def takes_response_format(model: str) -> bool:
    """Whether the model accepts ``response_format`` (GPT image models reject it)."""
    return not model.startswith("gpt-image")


def _dimensions(*sizes: str | None) -> tuple[int, int]:
    for size in sizes:
        match = _SIZE.match(size or "")
        if match:
            return int(match.group(1)), int(match.group(2))
    return 0, 0


def request_params(call: Call) -> dict[str, Any]:
    """The ``images.generate`` keyword arguments for a task (unset fields are omitted).

    ``negative_prompt``, ``seed`` and ``guidance_scale`` have no OpenAI equivalent and are not
    sent. Reference images need the edits endpoint, which this adapter does not call.

    Raises:
        InvalidParameter: the task has reference images.
    """
    spec = call.task.image
    if spec.reference_images:
        raise InvalidParameter(
            f"{call.task.provider}: {call.task.model} takes no reference images here "
            "(images/generations is text-to-image)",
            code="REFERENCE_IMAGES_UNSUPPORTED",
        )
    params: dict[str, Any] = {"model": call.task.model, "prompt": spec.prompt}
    if spec.n > 1:
        params["n"] = spec.n
    for name in ("size", "quality", "background", "output_format"):
        value = getattr(spec, name)
        if value:
            params[name] = value
    if takes_response_format(call.task.model):
        b64 = spec.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON
        params["response_format"] = "b64_json" if b64 else "url"
    return params


async def generate(client: openai.AsyncOpenAI, call: Call) -> Finished:
    """Generate the task's images.

    Raises:
        EmptyResult: a 200 without any image.
        BadOutput: an image is neither a URL nor valid base64.
        InvalidParameter: see :func:`request_params`.
    """
    response: ImagesResponse = await client.images.generate(**request_params(call))
    request_id = response._request_id or ""
    spec = call.task.image
    if not response.data:
        raise EmptyResult(
            f"{call.task.provider}: images/generations answered without images",
            request_id=request_id,
        )
    fmt = response.output_format or spec.output_format or "png"
    mime = _MIME.get(fmt, f"image/{fmt}")
    width, height = _dimensions(response.size, spec.size)
    want_b64 = spec.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON
    result = task_pb2.TaskResult(provider_request_id=request_id)
    for item in response.data:
        image = result.images.add(mime_type=mime, width=width, height=height)
        if item.b64_json:
            try:
                base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError):
                raise BadOutput(
                    f"{call.task.provider}: an image is not valid base64", request_id=request_id
                ) from None
            if want_b64:
                image.b64_data = item.b64_json
            else:
                image.url = f"data:{mime};base64,{item.b64_json}"
        elif item.url:
            image.url = item.url
        else:
            raise EmptyResult(
                f"{call.task.provider}: an image came back with neither url nor b64_json",
                request_id=request_id,
            )
    usage = task_pb2.Usage(images=len(result.images))
    if response.usage is not None:
        usage.input_tokens = response.usage.input_tokens
        usage.output_tokens = response.usage.output_tokens
        usage.total_tokens = response.usage.total_tokens
    return Finished(result, usage)
