"""A fake Volcengine Visual (CV) OpenAPI for Jimeng (provider-apis.md §2), for the official
``volcengine`` package's ``VisualService``.

- One route, ``POST /?Action=...&Version=2022-08-31``: ``CVSync2AsyncSubmitTask`` and
  ``CVSync2AsyncGetResult``.
- Every request's HMAC-SHA256 (V4-style) signature is recomputed from the configured secret, as
  Volcengine's gateway does (§2.2); an unknown access key, a stale ``X-Date`` or a wrong
  signature gets the gateway's ``ResponseMetadata.Error`` envelope with HTTP 401
  (``InvalidAccessKey``, ``InvalidTimestamp``, ``SignatureDoesNotMatch``).
- Business answers use Jimeng's envelope ``{"code", "data", "message", "request_id",
  "status", "time_elapsed"}``; 10000 is success. Jobs walk in_queue -> generating -> done on the
  clock; an unknown job id is ``data.status: not_found``.
- Images: real PNGs, ``width``x``height`` (default 512x512, doubled when ``use_sr`` is on, as
  the 2.1 model's super-resolution does), always as ``binary_data_base64`` and also as
  ``image_urls`` served by this fake when ``req_json.return_url`` is true. Videos: a small real
  MP4 of the requested ``aspect_ratio`` at ``video_url``.

Failure codes (from Jimeng's docs): 429 -> 50429, 500 -> 50500, ``[refuse]`` -> 400 50412 "Text
Risk Not Pass", ``[jobfail]`` -> a done job answering 50500. A generic 400 answers code 50201
(the docs list no generic parameter-error code; this one is the fake's). Operations recorded in
``calls``: ``submit``, ``result``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes import directives
from tests.fakes.server import FakeServer, cli_parser, mp4, png, serve_forever

DEFAULT_ACCESS_KEY = "AKLTfakeaccesskey"
DEFAULT_SECRET_KEY = "fake-secret-key"
VERSION = "2022-08-31"
REGION, SERVICE = "cn-north-1", "cv"
_CREDENTIAL = re.compile(
    r"HMAC-SHA256 Credential=(?P<ak>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_BUSINESS = {
    400: (50201, "Params Error"),
    401: (50400, "Access Denied"),
    403: (50400, "Access Denied"),
    429: (50429, "Request Has Reached API Limit, Please Try Later"),
    500: (50500, "Internal Error"),
    503: (50501, "Internal RPC Error"),
}
_OPS = {"CVSync2AsyncSubmitTask": "submit", "CVSync2AsyncGetResult": "result"}
_VIDEO_SIZES = {
    "16:9": (256, 144),
    "9:16": (144, 256),
    "1:1": (144, 144),
    "4:3": (192, 144),
    "3:4": (144, 192),
    "21:9": (336, 144),
}


def _request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(9).upper()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(
    secret: str,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
    x_date: str,
) -> str:
    """The signature Volcengine's gateway expects (provider-apis.md §2.2, steps 1-5)."""
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    canonical = "\n".join(
        [
            method,
            path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    date = x_date[:8]
    scope = f"{date}/{REGION}/{SERVICE}/request"
    to_sign = "\n".join(
        ["HMAC-SHA256", x_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(secret.encode(), date), REGION), SERVICE), "request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class JimengJob:
    """A submitted job as the fake keeps it."""

    id: str
    req_key: str
    prompt: str
    form: dict[str, Any]
    wants: directives.Directives
    created: float = field(default_factory=time.monotonic)
    output: dict[str, Any] | None = None

    def status(self) -> str:
        elapsed = (time.monotonic() - self.created) * 1000
        if elapsed < self.wants.queued_ms:
            return "in_queue"
        if elapsed < self.wants.queued_ms + self.wants.render_ms:
            return "generating"
        return "done"


class FakeJimeng(FakeServer):
    """The Visual API's Sync2Async task actions, with real signature checks.

    Args:
        access_key: The access key id accepted.
        secret_key: Its secret, used to recompute each request's signature.
    """

    def __init__(
        self, access_key: str = DEFAULT_ACCESS_KEY, secret_key: str = DEFAULT_SECRET_KEY
    ) -> None:
        super().__init__()
        self.access_key = access_key
        self.secret_key = secret_key
        self.jobs: dict[str, JimengJob] = {}

    def routes(self) -> Sequence[BaseRoute]:
        """The single OpenAPI route."""
        return [Route("/", self._dispatch, methods=["POST", "GET"])]

    def job(self, contains: str) -> JimengJob:
        """The (single) job whose prompt contains ``contains``."""
        (found,) = [j for j in self.jobs.values() if contains in j.prompt]
        return found

    # -- envelopes ------------------------------------------------------------------------------

    def gateway_error(
        self, status: int, action: str, code: str, code_n: int, message: str
    ) -> JSONResponse:
        """The OpenAPI gateway's error envelope."""
        meta = {
            "RequestId": _request_id(),
            "Action": action,
            "Version": VERSION,
            "Service": SERVICE,
            "Region": REGION,
            "Error": {"CodeN": code_n, "Code": code, "Message": message},
        }
        return JSONResponse({"ResponseMetadata": meta}, status_code=status)

    def business(
        self,
        code: int,
        message: str,
        data: Any = None,
        *,
        http_status: int = 200,
        retry_after: str = "",
    ) -> JSONResponse:
        """Jimeng's business envelope."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = {
            "code": code,
            "data": data,
            "message": message,
            "request_id": _request_id(),
            "status": code,
            "time_elapsed": "12.345ms",
        }
        return JSONResponse(body, status_code=http_status, headers=headers)

    # -- the route ------------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        action = request.query_params.get("Action", "")
        body = await request.body()
        denied = self._check_signature(request, action, body)
        if denied is not None:
            self.record(_OPS.get(action, action), "", denied.status_code)
            return denied
        if request.query_params.get("Version") != VERSION or action not in (
            "CVSync2AsyncSubmitTask",
            "CVSync2AsyncGetResult",
        ):
            self.record(action, "", 404)
            return self.gateway_error(
                404,
                action,
                "InvalidActionOrVersion",
                100008,
                f"Could not find operation {action} for version "
                f"{request.query_params.get('Version')}",
            )
        try:
            form = json.loads(body or b"{}")
        except ValueError:
            return self.business(50201, "Params Error: body is not JSON", http_status=400)
        if action == "CVSync2AsyncSubmitTask":
            return await self._submit(form)
        return await self._result(request, form)

    def _check_signature(self, request: Request, action: str, body: bytes) -> Response | None:
        found = _CREDENTIAL.fullmatch(request.headers.get("authorization", ""))
        x_date = request.headers.get("x-date", "")
        if found is None or not x_date:
            return self.gateway_error(
                401, action, "MissingAuthenticationToken", 100001, "Missing authentication token"
            )
        if found["ak"] != self.access_key:
            return self.gateway_error(
                401,
                action,
                "InvalidAccessKey",
                100009,
                "The Access Key Id you provided does not exist in our records.",
            )
        try:
            signed_at = datetime.datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            signed_at = None
        now = datetime.datetime.now(datetime.UTC)
        if signed_at is None or abs((now - signed_at).total_seconds()) > 900:
            return self.gateway_error(
                401, action, "InvalidTimestamp", 100006, "The request timestamp is invalid."
            )
        signed = found["signed"].split(";")
        headers = {k.lower(): v for k, v in request.headers.items()}
        wanted = expected_signature(
            self.secret_key,
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers=headers,
            signed=signed,
            body=body,
            x_date=x_date,
        )
        if not hmac.compare_digest(wanted, found["signature"]) or found["date"] != x_date[:8]:
            return self.gateway_error(
                401,
                action,
                "SignatureDoesNotMatch",
                100010,
                "The request signature we calculated does not match the signature you "
                "provided. Check your Secret Access Key and signing method. Consult the service "
                "documentation for details.",
            )
        return None

    async def _submit(self, form: dict[str, Any]) -> Response:
        prompt = str(form.get("prompt") or "")
        wants = directives.parse(prompt)
        seen = self.seen("submit", prompt)
        delay = wants.sleeps(seen)
        if delay:
            await asyncio.sleep(delay)
        if wants.fails(seen):
            self.record("submit", prompt, wants.status)
            code, message = _BUSINESS.get(wants.status, (50500, "Internal Error"))
            return self.business(
                int(wants.code) if wants.code.isdigit() else code,
                message,
                http_status=wants.status,
                retry_after=wants.retry_after,
            )
        if wants.refuse:
            self.record("submit", prompt, 400)
            return self.business(50412, "Text Risk Not Pass", http_status=400)
        req_key = str(form.get("req_key") or "")
        if not req_key.startswith("jimeng_") or not prompt:
            self.record("submit", prompt, 400)
            return self.business(
                50201, "Params Error: req_key and prompt are required", http_status=400
            )
        job = JimengJob(
            id=str(7392616336519610409 + len(self.jobs) * 7919 + secrets.randbelow(1000)),
            req_key=req_key,
            prompt=prompt,
            form=form,
            wants=wants,
        )
        self.jobs[job.id] = job
        self.record("submit", prompt, 200, job_id=job.id, **_detail(form))
        return self.business(10000, "Success", {"task_id": job.id})

    async def _result(self, request: Request, form: dict[str, Any]) -> Response:
        job = self.jobs.get(str(form.get("task_id") or ""))
        if job is None or job.req_key != form.get("req_key"):
            self.record("result", "", 200, job_status="not_found")
            return self.business(10000, "Success", {"status": "not_found"})
        status = job.status()
        self.record("result", job.prompt, 200, job_id=job.id, job_status=status)
        if status != "done":
            return self.business(10000, "Success", {"status": status})
        if job.wants.job_fails:
            return self.business(50500, "Internal Error", {"status": "done"}, http_status=500)
        try:
            options = json.loads(form.get("req_json") or "{}")
        except ValueError:
            options = {}
        if job.output is None:
            job.output = await self._render(request, job)
        data: dict[str, Any] = {"status": "done", "algorithm_base_resp": {"status_code": 0}}
        if job.wants.empty_times:
            data |= {"binary_data_base64": [], "image_urls": None, "video_url": ""}
        elif "video" in job.output:
            data |= {"video_url": job.output["video"], "aigc_meta_tagged": False}
        else:
            data["binary_data_base64"] = [job.output["b64"]]
            data["image_urls"] = [job.output["url"]] if options.get("return_url") else None
        return self.business(10000, "Success", data)

    async def _render(self, request: Request, job: JimengJob) -> dict[str, Any]:
        if "vgfm" in job.req_key or "v2v" in job.req_key or "ti2v" in job.req_key:
            width, height = _VIDEO_SIZES.get(
                str(job.form.get("aspect_ratio") or "16:9"), (256, 144)
            )
            video = await asyncio.to_thread(mp4, job.prompt, width, height)
            return {"video": self.store_media(request, video, "video/mp4", ".mp4")}
        default = 512 if job.req_key.endswith("v21_L") else 1328
        width = int(job.form.get("width") or default)
        height = int(job.form.get("height") or default)
        if job.req_key.endswith("v21_L") and job.form.get("use_sr", True) is not False:
            width, height = width * 2, height * 2  # super-resolution doubles the output
        picture = await asyncio.to_thread(png, job.prompt, width, height)
        return {
            "b64": base64.b64encode(picture).decode(),
            "url": self.store_media(request, picture, "image/png", ".png"),
        }


def _detail(form: dict[str, Any]) -> dict[str, Any]:
    keys = ("req_key", "seed", "width", "height", "aspect_ratio", "frames", "use_sr")
    detail = {k: form[k] for k in keys if k in form}
    detail["images"] = len(form.get("image_urls") or []) + len(form.get("binary_data_base64") or [])
    return detail


def main() -> None:
    """``python -m tests.fakes.jimeng --port N [--access-key AK --secret-key SK]``."""
    parser = cli_parser(__doc__ or "fake Jimeng")
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    args = parser.parse_args()
    serve_forever(FakeJimeng(args.access_key, args.secret_key), args.host, args.port)


if __name__ == "__main__":
    main()
