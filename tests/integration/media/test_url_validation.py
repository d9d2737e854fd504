"""User-supplied URLs (reference images, first frames, webhooks) that point at loopback, private
or link-local addresses answer INVALID_ARGUMENT naming the field, through the real gateway; host
names are resolved and checked (a fake DNS maps a name to 10.1.2.3, no hosts file needed)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from genhub.egress import EgressPolicy
from genhub.gateway import validation
from genhub.v1 import task_service_pb2
from tests.support.http_server import StaticResolver
from tests.support.stack import Stack
from tests.support.tasks import S, image_request, violations


def _image(*urls: str, **fields: Any) -> task_service_pb2.CreateImageTaskRequest:
    spec = S.ImageSpec(prompt="a cat", size="256x256", reference_images=list(urls))
    return image_request(image=spec, **fields)


def _video(first_frame: str) -> task_service_pb2.CreateVideoTaskRequest:
    spec = S.VideoSpec(
        prompt="waves",
        aspect_ratio="16:9",
        duration_seconds=2,
        resolution="240p",
        first_frame_image=first_frame,
    )
    return task_service_pb2.CreateVideoTaskRequest(provider="demo", model="demo-video", video=spec)


CASES: list[tuple[str, Any, str, str]] = [
    ("loopback", _image("https://127.0.0.1/a.png"), "image.reference_images[0]", "loopback"),
    (
        "ten-net",
        _image("https://1.1.1.1/a.png", "https://10.2.3.4/b.png"),
        "image.reference_images[1]",
        "private",
    ),
    (
        "metadata",
        _image("https://169.254.169.254/latest/meta-data/"),
        "image.reference_images[0]",
        "link-local",
    ),
    ("ipv6 loopback", _image("https://[::1]/a.png"), "image.reference_images[0]", "loopback"),
    ("first frame", _video("https://192.168.0.10/f.png"), "video.first_frame_image", "private"),
    (
        "webhook loopback",
        _image(webhook=S.Webhook(url="http://127.0.0.1:9/hook")),
        "webhook.url",
        "loopback",
    ),
    ("webhook scheme", _image(webhook=S.Webhook(url="ftp://1.1.1.1/hook")), "webhook.url", "http"),
    ("webhook missing url", _image(webhook=S.Webhook()), "webhook.url", "required"),
]


@pytest.mark.parametrize(("case", "request_", "field", "words"), CASES, ids=[c[0] for c in CASES])
async def test_internal_addresses_are_refused_naming_the_field(
    stack: Stack, case: str, request_: Any, field: str, words: str
) -> None:
    create = (
        stack.tasks.CreateVideoTask
        if isinstance(request_, task_service_pb2.CreateVideoTaskRequest)
        else stack.tasks.CreateImageTask
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    found = violations(raised.value)
    assert field in found, f"{case}: {found}"
    assert words in found[field], f"{case}: {found[field]!r}"


async def test_webhook_is_kept_on_the_task(stack: Stack) -> None:
    hook = S.Webhook(url="https://93.184.216.34/hooks/genhub", events=S.WEBHOOK_EVENTS_ALL)
    created = (await stack.tasks.CreateImageTask(_image(webhook=hook))).task
    got = await stack.tasks.GetTask(task_service_pb2.GetTaskRequest(task_id=created.task_id))
    assert got.task.webhook == hook


async def test_host_names_resolving_to_internal_addresses_are_refused() -> None:
    resolver = StaticResolver(
        {
            "cdn.rebind.test": ["10.1.2.3"],
            "mixed.test": ["1.1.1.1", "127.0.0.1"],
            "ok.test": ["1.1.1.1"],
        }
    )
    v = validation.Violations()
    urls = [
        ("image.reference_images[0]", "https://cdn.rebind.test/a.png"),
        ("image.reference_images[1]", "https://mixed.test/a.png"),
        ("image.reference_images[2]", "https://ok.test/a.png"),
        ("image.reference_images[3]", "https://nowhere.test/a.png"),
        ("webhook.url", "http://cdn.rebind.test/hook"),
    ]
    await validation.check_remote_urls(v, urls, EgressPolicy(), resolver)
    found = {item.field: item.description for item in v.items}
    assert "10.1.2.3, a private address" in found["image.reference_images[0]"]
    assert "127.0.0.1, a loopback address" in found["image.reference_images[1]"]
    assert "image.reference_images[2]" not in found
    assert "does not resolve" in found["image.reference_images[3]"]
    assert "10.1.2.3" in found["webhook.url"]
    # The deployment's allow-list admits a named internal host (e.g. an in-cluster receiver).
    allowed = validation.Violations()
    await validation.check_remote_urls(
        allowed, urls[:1], EgressPolicy.from_setting("10.0.0.0/8"), resolver
    )
    assert allowed.items == []
