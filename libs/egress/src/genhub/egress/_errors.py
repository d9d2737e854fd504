"""The errors of guarded outbound HTTP."""

from __future__ import annotations


class EgressRefused(Exception):
    """GenHub will not fetch or call this URL: a scheme other than http(s), a malformed URL, or a
    host that is (or resolves to) a loopback, private, link-local or otherwise non-public address
    the deployment does not allow. ``reason`` is a short phrase fit for a field violation
    (``"resolves to 10.1.2.3, a private address"``); it never contains credentials."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpStatusError(Exception):
    """The server answered with a status that is not 2xx (and not a redirect being followed).

    ``status`` is the HTTP status code; ``retry_after`` the server's ``Retry-After`` in seconds,
    when it sent one as a number.
    """

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
