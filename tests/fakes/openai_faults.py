"""Misbehaviour for the OpenAI fake: prompt directives, injected faults and OpenAI's error bodies.

Prompt directives (in any prompt the fake receives; counted per route and prompt, so a test's
unique prompt gets its own counts):

- ``[fail:STATUS]`` / ``[fail:STATUS:N]`` (or ``[status:...]``, as the other fakes spell it):
  answer STATUS (400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503) with OpenAI's error
  body, always or for the first N calls; ``[code:NAME]`` sets the body's ``code``;
- ``[retry-after:S]`` / ``[retry-after-ms:MS]``: add that header to the failure;
- ``[quota]``: 429 ``insufficient_quota`` (billing), every time;
- ``[refuse]``: 400 ``content_policy_violation`` (``moderation_blocked`` for GPT image models);
- ``[sleep:MS]`` / ``[sleep:MS:N]``: answer after MS milliseconds, always or the first N times;
- ``[empty]`` / ``[empty:N]``: a 200 without output (no images, no choices, an empty video);
- ``[video-fail]`` / ``[video-fail:N]`` (or ``[jobfail]``): the video job ends ``failed``;
- ``[render:MS]``: the video job takes MS milliseconds (else the fake's ``render_seconds``);
- ``[garbage]``: the video content is an HTML page, not an MP4;
- ``[broken]``: the video content's connection breaks off before the first byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

_DIRECTIVE = re.compile(r"\[([a-z-]+)(?::(\d{1,7}))?(?::(\d{1,7}))?\]")
_CODE = re.compile(r"\[code:([A-Za-z0-9_.]{1,64})\]")

# (type, code, message) per status, as OpenAI answers them.
_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "The request was invalid (fake)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("server_error", None, "Request timed out (fake)."),
    409: ("invalid_request_error", None, "Conflict (fake)."),
    422: ("invalid_request_error", None, "Unprocessable entity (fake)."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 5, Used 5, Requested 1.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Fault:
    """An error answer: status, OpenAI error body fields and optional retry headers."""

    status: int
    type: str
    code: str | None
    message: str
    param: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None

    @classmethod
    def of(cls, status: int, **fields: Any) -> Fault:
        """A fault with OpenAI's usual type, code and message for ``status``."""
        kind, code, message = _DEFAULTS.get(status, ("server_error", None, "Error (fake)."))
        values: dict[str, Any] = {"type": kind, "code": code, "message": message}
        return cls(status=status, **(values | fields))

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` with every key present (null when unset), as OpenAI sends."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        """Retry headers, when set."""
        found = {}
        if self.retry_after is not None:
            found["retry-after"] = self.retry_after
        if self.retry_after_ms is not None:
            found["retry-after-ms"] = self.retry_after_ms
        return found


QUOTA = Fault.of(
    429,
    type="insufficient_quota",
    code="insufficient_quota",
    message="You exceeded your current quota, please check your plan and billing details.",
)


def refusal(model: str) -> Fault:
    """The content-policy refusal of an image or chat model."""
    if model.startswith("gpt-image"):
        return Fault.of(
            400,
            type="image_generation_user_error",
            code="moderation_blocked",
            message="Your request was rejected by the safety system.",
        )
    return Fault.of(
        400,
        code="content_policy_violation",
        message="Your request was rejected as a result of our safety system. Your prompt may "
        "contain text that is not allowed by our safety system.",
    )


@dataclass(frozen=True)
class Directives:
    """What a prompt asks the fake to do."""

    fail: int | None = None
    fail_times: int | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    quota: bool = False
    refuse: bool = False
    sleep_ms: int = 0
    sleep_times: int | None = None
    empty_times: int | None = None
    empty: bool = False
    video_fail: bool = False
    video_fail_times: int | None = None
    render_ms: int | None = None
    code: str | None = None
    garbage: bool = False
    broken: bool = False


def parse(prompt: str) -> Directives:
    """The directives in ``prompt`` (unknown ones are ignored)."""
    values: dict[str, Any] = {}
    for name, first, second in _DIRECTIVE.findall(prompt):
        a = int(first) if first else None
        b = int(second) if second else None
        if name in ("fail", "status") and a is not None:
            values |= {"fail": a, "fail_times": b}
        elif name == "retry-after" and a is not None:
            values["retry_after"] = str(a)
        elif name == "retry-after-ms" and a is not None:
            values["retry_after_ms"] = str(a)
        elif name == "sleep" and a is not None:
            values |= {"sleep_ms": a, "sleep_times": b}
        elif name == "empty":
            values |= {"empty": True, "empty_times": a}
        elif name in ("video-fail", "jobfail"):
            values |= {"video_fail": True, "video_fail_times": a}
        elif name == "render" and a is not None:
            values["render_ms"] = a
        elif name in ("quota", "refuse", "garbage", "broken"):
            values[name] = True
    code = _CODE.search(prompt)
    if code:
        values["code"] = code.group(1)
    return Directives(**values)


def within(times: int | None, seen: int) -> bool:
    """Whether the ``seen``-th call (1-based) is one a ``times`` limit (None: all) covers."""
    return times is None or seen <= times


def error_response(fault: Fault, request_id: str) -> JSONResponse:
    """The HTTP answer for ``fault``."""
    headers = {"x-request-id": request_id} | fault.headers()
    return JSONResponse(fault.body(), status_code=fault.status, headers=headers)


def invalid(message: str, param: str, code: str = "invalid_value") -> Fault:
    """A 400 ``invalid_request_error`` about ``param``."""
    return Fault.of(400, code=code, param=param, message=message)


def missing(param: str) -> Fault:
    """A 400 for a missing required parameter."""
    return invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
