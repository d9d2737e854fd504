"""Guarded clients, URL checks for validation, and a redirect-checking streaming request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx

from genhub.egress._errors import EgressRefused, HttpStatusError
from genhub.egress._policy import EgressPolicy, ip_literal
from genhub.egress._resolver import Resolver, SystemResolver
from genhub.egress._transport import GuardedTransport

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def guarded_client(
    policy: EgressPolicy,
    resolver: Resolver | None = None,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over ``GuardedTransport``: no environment proxies, redirects
    not followed automatically (``open_stream`` follows them and checks every hop). Close it
    with ``aclose`` (or ``async with``)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    )


async def check_url(url: str, policy: EgressPolicy, resolver: Resolver | None = None) -> None:
    """Refuse ``url`` now, before anyone fetches it: the syntax and scheme rules, then every
    address its host resolves to. For request validation (a reference image URL, a webhook
    URL), so a client hears 400 naming the field instead of a task failing later; the fetch
    itself checks again at connect time.

    Raises EgressRefused with a reason fit for a field violation.
    """
    parts = policy.parse(url)
    host = parts.hostname or ""
    if ip_literal(host) is not None or policy.host_allowed(host):
        return
    try:
        addresses = await (resolver or SystemResolver()).resolve(host, parts.port or 443)
    except (OSError, TimeoutError):
        raise EgressRefused(f"host {host!r} does not resolve") from None
    for address in addresses:
        refusal = policy.address_refusal(address)
        if refusal is not None:
            raise EgressRefused(f"host {host!r} resolves to {address}, {refusal}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    policy: EgressPolicy,
    *,
    method: str = "GET",
    max_redirects: int = 3,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> AsyncIterator[httpx.Response]:
    """Send a request and yield the 2xx response with its body still unread (stream it with
    ``aiter_bytes``); the response is closed on exit.

    Redirects (301/302/303/307/308) are followed up to ``max_redirects`` times, each new URL
    checked by ``policy`` again (a GET after 303). With ``max_redirects=0`` a redirect is an
    error, as webhooks want. Raises EgressRefused for a refused URL, HttpStatusError for any
    other status, and httpx's ``TransportError`` family for timeouts and connection errors.
    """
    hops = 0
    while True:
        policy.parse(url)
        request = client.build_request(method, url, headers=headers, content=content)
        response = await client.send(request, stream=True)
        try:
            if response.is_redirect:
                location = response.headers.get("location", "")
                if hops >= max_redirects or not location:
                    what = "redirect not followed" if max_redirects == 0 else "too many redirects"
                    raise HttpStatusError(
                        response.status_code, f"HTTP {response.status_code}: {what}"
                    )
                hops += 1
                url = str(response.url.join(location))
                if response.status_code == 303:
                    method, content = "GET", None
                continue
            if not response.is_success:
                raise HttpStatusError(
                    response.status_code,
                    f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                    _retry_after(response),
                )
            yield response
            return
        finally:
            await response.aclose()
