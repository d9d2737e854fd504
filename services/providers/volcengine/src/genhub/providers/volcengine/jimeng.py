"""Jimeng image and video jobs through the Visual API's legacy SDK (``volcengine`` package).

``CVSync2AsyncSubmitTask`` starts a job, ``CVSync2AsyncGetResult`` reports it: ``data.status``
in_queue | generating | done | not_found | expired, and once done the images
(``binary_data_base64``, ``image_urls``) or ``video_url`` (provider-apis.md §2).

The SDK is blocking (``requests``) and keeps process-wide state: ``VisualService()`` is a
singleton whose ``__init__`` resets host, scheme, timeouts and keys on every construction. So:

- each client is a private ``VisualService`` instance (made with ``object.__new__``, never
  through the singleton constructor), configured once, with its own ``requests`` session and
  keys: one per (endpoint, keys, timeouts) per worker process, shared by every task using them;
  per-request keys get their own client, closed when the task's call ends;
- calls run on a dedicated thread pool of ``jimeng_threads`` threads (the worker's concurrency:
  a task makes one Jimeng call at a time, so no call waits for a thread, and blocking calls never
  occupy the event loop or asyncio's default executor);
- the SDK hides failed answers in a bare ``Exception``; a ``requests`` response hook keeps the
  thread's last response, so the status, ``Retry-After`` and JSON body are read from it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from volcengine.visual.VisualService import VisualService

from genhub.providers.sdk import AuthFailed, Call
from genhub.providers.volcengine.clients import ClientPool
from genhub.providers.volcengine.config import VolcengineSettings
from genhub.providers.volcengine.jimeng_errors import OK, map_jimeng_error, map_transport_error

SUBMIT = "cv_sync2async_submit_task"
GET_RESULT = "cv_sync2async_get_result"

_last = threading.local()  # the calling thread's last HTTP response (set by a session hook)


def _remember(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    _last.response = response
    return response


@dataclass(frozen=True)
class VisualEndpoint:
    """What a client is built for; equal endpoints share one client."""

    scheme: str
    host: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    timeout: float
    connect_timeout: float


@dataclass(frozen=True)
class Reply:
    """One answer: the JSON body (a dict) with a success ``code``."""

    body: dict[str, Any]


def _make_service(endpoint: VisualEndpoint, threads: int) -> VisualService:
    service = object.__new__(VisualService)  # a private instance, not the process singleton
    VisualService.__init__(service)  # also reads VOLC_* / ~/.volc keys: overwritten below
    service.set_scheme(endpoint.scheme)
    service.set_host(endpoint.host)
    service.set_ak(endpoint.access_key_id)
    service.set_sk(endpoint.secret_access_key)
    service.set_connection_timeout(endpoint.connect_timeout)
    service.set_socket_timeout(endpoint.timeout)
    # One pooled connection per thread; the SDK never retries and neither does this adapter.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=threads, max_retries=0)
    service.session.mount("http://", adapter)
    service.session.mount("https://", adapter)
    service.session.hooks["response"].append(_remember)
    return service


def _invoke(service: VisualService, method: str, form: dict[str, Any]) -> tuple[Any, Any]:
    """Runs in a pool thread: (answer, None) or (None, (status, body, headers, exception))."""
    _last.response = None
    try:
        return getattr(service, method)(form), None
    except Exception as exc:  # the SDK raises bare Exception for every failure
        response: requests.Response | None = getattr(_last, "response", None)
        if response is None:
            return None, (0, None, {}, exc)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return None, (response.status_code, body, dict(response.headers), exc)
    finally:
        _last.response = None


class JimengClients:
    """Visual API clients per endpoint and keys, and the thread pool their calls run on."""

    def __init__(self, settings: VolcengineSettings) -> None:
        self._settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=settings.jimeng_threads, thread_name_prefix="jimeng"
        )
        self._pool: ClientPool[VisualEndpoint, VisualService] = ClientPool(
            functools.partial(_make_service, threads=settings.jimeng_threads), self._close
        )

    @property
    def pool(self) -> ClientPool[VisualEndpoint, VisualService]:
        """The client pool (tests look at what it caches)."""
        return self._pool

    def endpoint(self, call: Call) -> tuple[VisualEndpoint, bool]:
        """The endpoint for a call and whether its client may be cached.

        Raises:
            AuthFailed: no access key pair anywhere, or per-request credentials without one.
        """
        settings = self._settings
        config = call.config
        if config.source == "request":
            ak, sk = config.access_key_id, config.secret_access_key
            if not (ak and sk):
                raise AuthFailed(
                    "the request's credentials carry no access_key_id/secret_access_key, "
                    "which Jimeng needs",
                    code="MISSING_ACCESS_KEY",
                )
        elif config.access_key_id and config.secret_access_key:
            ak, sk = config.access_key_id, config.secret_access_key
        else:
            ak, sk = settings.access_key_id, settings.secret_access_key.get_secret_value()
            if not (ak and sk):
                raise AuthFailed(
                    "no Jimeng access key: set VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY on "
                    "the volcengine worker or store them with PUT /api/v1/providers/volcengine/"
                    "config",
                    code="MISSING_ACCESS_KEY",
                )
        url = urlsplit(settings.visual_base_url)
        timeout = config.timeout_seconds or settings.timeout_seconds
        endpoint = VisualEndpoint(
            scheme=url.scheme,
            host=url.netloc,
            access_key_id=ak,
            secret_access_key=sk,
            timeout=timeout,
            connect_timeout=min(settings.connect_timeout_seconds, timeout),
        )
        return endpoint, config.source != "request"

    async def call(self, call: Call, method: str, form: dict[str, Any], *, job: bool) -> Reply:
        """Call ``method`` (SUBMIT or GET_RESULT) off the event loop.

        Raises:
            ProviderError: the mapped failure (``job``: see :func:`map_jimeng_error`).
        """
        endpoint, cache = self.endpoint(call)
        secrets = (endpoint.secret_access_key,)
        loop = asyncio.get_running_loop()
        async with self._pool.lease(endpoint, cache=cache) as service:
            answer, failure = await loop.run_in_executor(
                self._executor, _invoke, service, method, form
            )
        if failure is not None:
            status, body, headers, exc = failure
            if status == 0:
                raise map_transport_error(exc, secrets)
            raise map_jimeng_error(status, body, headers, job=job, secrets=secrets)
        if not isinstance(answer, dict):
            raise map_jimeng_error(200, answer, {}, job=job, secrets=secrets)
        if answer.get("code") != OK:
            raise map_jimeng_error(200, answer, {}, job=job, secrets=secrets)
        return Reply(answer)

    async def _close(self, service: VisualService) -> None:
        service.session.close()

    async def aclose(self) -> None:
        """Close every cached client and stop the threads."""
        await self._pool.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)


def result_form(req_key: str, job_id: str, req_json: dict[str, Any]) -> dict[str, Any]:
    """The GetResult body: ``req_json`` travels as a JSON *string* (provider-apis.md §2.3)."""
    return {"req_key": req_key, "task_id": job_id, "req_json": json.dumps(req_json)}
