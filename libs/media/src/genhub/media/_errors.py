"""Media errors carry their retry semantics, like ``genhub.providers.sdk.errors``: ``code`` is
stable and machine-readable, ``retryable`` says whether another attempt of the task may succeed,
and the text never contains a secret (URLs are reported without their query string)."""

from __future__ import annotations


class MediaError(Exception):
    """Storing, fetching or serving a media file failed."""

    retryable = False
    default_code = "MEDIA_ERROR"

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_after = retry_after


class RetryableMediaError(MediaError):
    """Another attempt may succeed: the provider's URL answered an error status (404 included:
    CDNs publish late), timed out, or served something that is not the promised file (an HTML
    page, a truncated image); or the object store is unavailable."""

    retryable = True
    default_code = "MEDIA_UNAVAILABLE"


class PermanentMediaError(MediaError):
    """Retrying cannot help: the URL is refused by the egress rules, the file exceeds the size
    limit, or the object does not exist."""

    default_code = "MEDIA_REJECTED"


# Codes (``MediaError.code``), one per cause.
FETCH_FAILED = "MEDIA_FETCH_FAILED"  # retryable: status, timeout, connection
INVALID = "MEDIA_INVALID"  # retryable: not the file it claims to be, or truncated
STORE_UNAVAILABLE = "MEDIA_STORE_UNAVAILABLE"  # retryable: object store error
URL_REFUSED = "MEDIA_URL_REFUSED"  # permanent: egress rules
TOO_LARGE = "MEDIA_TOO_LARGE"  # permanent: over the size limit
NOT_FOUND = "MEDIA_NOT_FOUND"  # permanent: no such object
