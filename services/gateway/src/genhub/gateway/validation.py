"""Validation of create requests against the provider catalogue; every rule names its field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2

from genhub.common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from genhub.egress import EgressPolicy, EgressRefused, Resolver, check_url
from genhub.v1 import provider_pb2, task_pb2

DEFAULT_MAX_PROMPT_CHARS = 10_000
MAX_WAIT_SECONDS = 60
MAX_LABELS = 32
MAX_ID_CHARS = 128
MAX_REFERENCE_IMAGES = 10
MAX_MESSAGES = 200
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
ROLES = frozenset({"system", "user", "assistant"})
_TYPE_WORD = {
    task_pb2.TASK_TYPE_IMAGE: "image",
    task_pb2.TASK_TYPE_VIDEO: "video",
    task_pb2.TASK_TYPE_TEXT: "text",
}


@dataclass
class Violations:
    """Collects every problem of a request, so one answer lists them all."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(path, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def resolve_model(
    providers: Mapping[str, provider_pb2.Provider],
    provider: str,
    model: str,
    task_type: task_pb2.TaskType.ValueType,
) -> provider_pb2.Model:
    """The catalogue entry for (provider, model); InvalidArgument naming the field otherwise."""
    v = Violations()
    if not provider:
        v.add("provider", "is required")
    if not model:
        v.add("model", "is required")
    v.raise_if_any()
    entry = providers.get(provider)
    if entry is None:
        known = ", ".join(sorted(providers)) or "none registered"
        raise InvalidArgument.one("provider", f"unknown provider {provider!r} (known: {known})")
    if not entry.enabled:
        raise FailedPrecondition(
            f"provider {provider!r} is disabled; enable it with ProviderService.EnableProvider "
            f"(POST /api/v1/providers/{provider}:enable)",
            reason="PROVIDER_DISABLED",
            metadata={"provider": provider},
        )
    for candidate in entry.models:
        if candidate.model == model:
            if candidate.type != task_type:
                raise InvalidArgument.one(
                    "model",
                    f"{model!r} is a {_TYPE_WORD.get(candidate.type, 'other')} model, "
                    f"not a {_TYPE_WORD[task_type]} model",
                )
            return candidate
    same_type = sorted(m.model for m in entry.models if m.type == task_type)
    raise InvalidArgument.one(
        "model",
        f"unknown model {model!r} for provider {provider!r} "
        f"({_TYPE_WORD[task_type]} models: {', '.join(same_type) or 'none'})",
    )


def _check_prompt(v: Violations, path: str, prompt: str, model: provider_pb2.Model) -> None:
    limit = model.max_prompt_chars or DEFAULT_MAX_PROMPT_CHARS
    if not prompt.strip():
        v.add(path, "is required and must not be blank")
    elif len(prompt) > limit:
        v.add(path, f"is {len(prompt)} characters; {model.model} accepts at most {limit}")


def _check_choice(v: Violations, path: str, value: str, allowed: list[str]) -> None:
    if value and allowed and value not in allowed:
        v.add(path, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")


# Reference images: https or inline data: only. Webhooks: http(s). Both: public addresses only
# (genhub.egress); names are resolved and checked by check_remote_urls.
_MEDIA_URLS = EgressPolicy(schemes=frozenset({"https"}))
_WEBHOOK_URLS = EgressPolicy()


def _check_url_syntax(v: Violations, path: str, url: str, policy: EgressPolicy, usage: str) -> None:
    try:
        policy.parse(url)
    except EgressRefused as exc:
        # Addresses are judged by check_remote_urls, with the deployment's exceptions.
        if not exc.reason.startswith("points at"):
            v.add(path, usage)


def _check_media_url(v: Violations, path: str, url: str) -> None:
    if url.startswith("data:image/"):
        return
    _check_url_syntax(v, path, url, _MEDIA_URLS, "must be an https:// URL or a data:image/... URL")


def check_webhook(v: Violations, webhook: task_pb2.Webhook) -> None:
    """Rules for a create request's webhook (the URL's addresses: ``check_remote_urls``)."""
    if not webhook.url:
        v.add("webhook.url", "is required when webhook is given")
    elif len(webhook.url) > 2048:
        v.add("webhook.url", "is longer than 2048 characters")
    else:
        _check_url_syntax(v, "webhook.url", webhook.url, _WEBHOOK_URLS, "must be an http(s):// URL")
    if webhook.events not in task_pb2.WebhookEvents.values():
        v.add("webhook.events", "must be WEBHOOK_EVENTS_TERMINAL or WEBHOOK_EVENTS_ALL")


def remote_urls(request: Any, kind: str) -> list[tuple[str, str]]:
    """(field path, URL) of every URL in a create request that GenHub or a provider will fetch
    or call: reference images, the first frame, the webhook. data: URLs are not remote."""
    urls: list[tuple[str, str]] = []
    if kind == "image":
        urls += [
            (f"image.reference_images[{i}]", u)
            for i, u in enumerate(request.image.reference_images)
        ]
    elif kind == "video" and request.video.first_frame_image:
        urls.append(("video.first_frame_image", request.video.first_frame_image))
    if request.HasField("webhook") and request.webhook.url:
        urls.append(("webhook.url", request.webhook.url))
    return [(path, url) for path, url in urls if not url.startswith("data:")]


async def check_remote_urls(
    v: Violations,
    urls: list[tuple[str, str]],
    allow: EgressPolicy,
    resolver: Resolver | None = None,
) -> None:
    """Resolve each URL's host and refuse it when any address is loopback, private, link-local
    or otherwise not public (unless ``allow`` lists it): a 400 naming the field instead of a
    request forged against an internal service. URLs already reported are skipped."""
    reported = {item.field for item in v.items}
    for path, url in urls:
        # Skip a URL already refused, or in a list refused as a whole (too many entries).
        if path in reported or path.partition("[")[0] in reported:
            continue
        policy = EgressPolicy(
            _WEBHOOK_URLS.schemes if path == "webhook.url" else _MEDIA_URLS.schemes,
            allow.allowed_networks,
            allow.allowed_hosts,
        )
        try:
            await check_url(url, policy, resolver)
        except EgressRefused as exc:
            v.add(path, f"{exc.reason}; only public addresses are allowed")


def require_id(field: str, value: str, hint: str = "") -> None:
    """An id or name the request addresses (a path value): given, and at most
    ``MAX_ID_CHARS`` long. Raises InvalidArgument naming ``field``. Checked here rather than
    echoed into a store NOT_FOUND, whose message for a 4,000-character id outgrew gRPC's
    metadata limit and reached clients as a retryable 503/429 ("Stream removed")."""
    if not value:
        raise InvalidArgument.one(field, "is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument.one(field, f"is longer than {MAX_ID_CHARS} characters{hint}")


def check_common(
    v: Violations,
    *,
    priority: task_pb2.Priority.ValueType,
    user_id: str,
    idempotency_key: str,
    labels: Mapping[str, str],
    wait: duration_pb2.Duration,
) -> None:
    """Rules shared by every create request."""
    if priority not in task_pb2.Priority.values():
        v.add("priority", "must be PRIORITY_LOW, PRIORITY_DEFAULT or PRIORITY_CRITICAL")
    if len(user_id) > MAX_ID_CHARS:
        v.add("user_id", f"is longer than {MAX_ID_CHARS} characters")
    if len(idempotency_key) > MAX_ID_CHARS:
        v.add("idempotency_key", f"is longer than {MAX_ID_CHARS} characters")
    if len(labels) > MAX_LABELS:
        v.add("labels", f"has {len(labels)} entries; at most {MAX_LABELS} are allowed")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key):
            v.add("labels", f"key {key[:70]!r} must be 1-63 letters, digits, '_' or '-'")
        if len(value) > 256:
            v.add(f"labels[{key}]", "value is longer than 256 characters")
    seconds = wait.seconds + wait.nanos / 1e9
    if seconds < 0:
        v.add("wait", "must not be negative")
    elif seconds > MAX_WAIT_SECONDS:
        v.add("wait", f"must be at most {MAX_WAIT_SECONDS}s")


def check_image(v: Violations, spec: task_pb2.ImageSpec, model: provider_pb2.Model) -> None:
    """Rules for an image spec."""
    _check_prompt(v, "image.prompt", spec.prompt, model)
    if len(spec.negative_prompt) > (model.max_prompt_chars or DEFAULT_MAX_PROMPT_CHARS):
        v.add("image.negative_prompt", "is longer than the model's prompt limit")
    _check_choice(v, "image.size", spec.size, list(model.sizes))
    _check_choice(v, "image.quality", spec.quality, list(model.qualities))
    _check_choice(v, "image.background", spec.background, list(model.backgrounds))
    _check_choice(v, "image.output_format", spec.output_format, list(model.output_formats))
    most = model.max_images or 1
    if spec.n < 0 or spec.n > most:
        v.add("image.n", f"must be between 1 and {most} for {model.model}")
    if spec.HasField("guidance_scale") and not 0 <= spec.guidance_scale <= 20:
        v.add("image.guidance_scale", "must be between 0 and 20")
    if spec.response_format not in task_pb2.ImageResponseFormat.values():
        v.add("image.response_format", "must be URL or B64_JSON")
    if len(spec.reference_images) > MAX_REFERENCE_IMAGES:
        # Judged as a whole: checking (and later resolving) each of 100,000 URLs would hold
        # the gateway for seconds before refusing the request anyway.
        v.add("image.reference_images", f"at most {MAX_REFERENCE_IMAGES} images")
    else:
        for i, url in enumerate(spec.reference_images):
            _check_media_url(v, f"image.reference_images[{i}]", url)


def check_video(v: Violations, spec: task_pb2.VideoSpec, model: provider_pb2.Model) -> None:
    """Rules for a video spec."""
    _check_prompt(v, "video.prompt", spec.prompt, model)
    _check_choice(v, "video.aspect_ratio", spec.aspect_ratio, list(model.aspect_ratios))
    _check_choice(v, "video.resolution", spec.resolution, list(model.resolutions))
    allowed = list(model.durations_seconds)
    if spec.duration_seconds < 0:
        v.add("video.duration_seconds", "must not be negative")
    elif spec.duration_seconds and allowed and spec.duration_seconds not in allowed:
        v.add(
            "video.duration_seconds",
            f"{spec.duration_seconds} is not allowed; allowed: {', '.join(map(str, allowed))}",
        )
    if spec.first_frame_image:
        _check_media_url(v, "video.first_frame_image", spec.first_frame_image)


def check_text(v: Violations, spec: task_pb2.TextSpec, model: provider_pb2.Model) -> None:
    """Rules for a text spec."""
    if spec.prompt and spec.messages:
        v.add("text.messages", "give either text.prompt or text.messages, not both")
    elif spec.messages:
        if len(spec.messages) > MAX_MESSAGES:
            v.add("text.messages", f"at most {MAX_MESSAGES} messages")
        for i, message in enumerate(spec.messages):
            if message.role not in ROLES:
                v.add(f"text.messages[{i}].role", "must be system, user or assistant")
            _check_prompt(v, f"text.messages[{i}].content", message.content, model)
    else:
        _check_prompt(v, "text.prompt", spec.prompt, model)
    if spec.max_tokens < 0:
        v.add("text.max_tokens", "must not be negative")
    elif model.max_tokens and spec.max_tokens > model.max_tokens:
        v.add("text.max_tokens", f"must be at most {model.max_tokens} for {model.model}")
    if spec.HasField("temperature") and not 0 <= spec.temperature <= 2:
        v.add("text.temperature", "must be between 0 and 2")
    if spec.HasField("top_p") and not 0 < spec.top_p <= 1:
        v.add("text.top_p", "must be greater than 0 and at most 1")
