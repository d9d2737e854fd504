"""Seedream images through Ark: ``POST /images/generations`` (provider-apis.md §1.5).

Text-to-image (``doubao-seedream-3-0-t2i-*``: one image; seed and guidance scale) and the 4.x
models (text- and image-to-image with up to 10 reference images; several images per request
through ``sequential_image_generation``). The answer arrives when the images are ready.
"""

from __future__ import annotations

from typing import Any

from volcenginesdkarkruntime import AsyncArk
from volcenginesdkarkruntime.types.images.images import SequentialImageGenerationOptions

from genhub.providers.sdk import Call, ContentRefused, EmptyResult, Finished
from genhub.providers.volcengine import media
from genhub.providers.volcengine.ark import ArkClients, drop_none, no_negative_prompt
from genhub.v1 import task_pb2


async def generate_image(ark: ArkClients, call: Call) -> Finished:
    """Generate the images of an image task.

    Raises:
        ProviderError: the mapped Ark error; EmptyResult when Ark answers 200 without an image;
            ContentRefused when every image was withheld by the output filter.
    """
    no_negative_prompt(call)
    spec = call.task.image
    b64 = spec.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON
    refs = list(spec.reference_images)
    kwargs: dict[str, Any] = drop_none(
        {
            "size": spec.size or None,
            "seed": spec.seed if spec.HasField("seed") else None,
            "guidance_scale": spec.guidance_scale if spec.HasField("guidance_scale") else None,
            "watermark": spec.watermark if spec.HasField("watermark") else None,
            "image": (refs[0] if len(refs) == 1 else refs) if refs else None,
        }
    )
    if spec.n > 1:
        # 4.x "group" output: the model makes up to max_images related images.
        kwargs["sequential_image_generation"] = "auto"
        kwargs["sequential_image_generation_options"] = SequentialImageGenerationOptions(
            max_images=spec.n
        )

    async def request(client: AsyncArk, headers: dict[str, str]) -> Any:
        return await client.images.generate(
            model=call.task.model,
            prompt=spec.prompt,
            response_format="b64_json" if b64 else "url",
            extra_headers=headers,
            **kwargs,
        )

    response, request_id = await ark.call(call, request)
    result = task_pb2.TaskResult(provider_request_id=request_id)
    refused: list[str] = []
    for item in getattr(response, "data", None) or []:
        url = getattr(item, "url", None) or ""
        data = getattr(item, "b64_json", None) or ""
        if not (url or data):
            error = getattr(item, "error", None)
            if error is not None and "Sensitive" in str(getattr(error, "code", "")):
                refused.append(str(getattr(error, "message", "") or error.code))
            continue
        width, height = media.parse_size(getattr(item, "size", None))
        if data:
            info = media.sniff_b64(data)
            image = result.images.add(b64_data=data, mime_type=info.mime_type)
            width, height = width or info.width, height or info.height
        else:
            image = result.images.add(url=url, mime_type=media.mime_from_url(url))
        image.width, image.height = width, height
    if not result.images:
        if refused:
            raise ContentRefused(
                refused[0], code="OutputImageSensitiveContentDetected", request_id=request_id
            )
        raise EmptyResult(
            f"Ark answered 200 with no image for {call.task.model}", request_id=request_id
        )
    usage = getattr(response, "usage", None)
    generated = getattr(usage, "generated_images", None) if usage is not None else None
    return Finished(result, task_pb2.Usage(images=generated or len(result.images)))
