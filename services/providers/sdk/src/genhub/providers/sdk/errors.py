"""Provider errors carry their retry semantics; adapters map SDK exceptions into them."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed: ``code`` is stable and machine-readable; no secrets in the text."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "PROVIDER_ERROR",
        retry_after: float | None = None,
        job_failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after
        # For long-running jobs: the job itself failed, so a retry submits a new one (instead
        # of polling the same job again, which is right for a failed poll request).
        self.job_failed = job_failed


class RetryableError(ProviderError):
    """Worth another attempt: rate limits, 5xx, timeouts, connection errors, empty output."""

    retryable = True


class PermanentError(ProviderError):
    """Retrying cannot help: bad parameters, refused content, authentication."""
