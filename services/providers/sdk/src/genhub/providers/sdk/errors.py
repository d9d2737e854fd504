"""Provider errors carry their retry semantics; adapters map SDK exceptions into them.

Every failure of a provider call belongs to one :class:`ErrorClass`. The class decides whether
GenHub retries (``retryable``) and whether the failure counts against the provider's health
(``provider_side``: the circuit breaker opens on those, not on a user's bad prompt). Adapters
raise the subclass that names the class; the dispatcher records ``code``, ``message``,
``error_class`` and ``request_id`` on the task.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    """Why a provider call failed, in GenHub's terms (stable: used in metrics and task errors)."""

    RATE_LIMITED = "rate_limited"  # 429 / throttling: retry after Retry-After
    QUOTA_EXHAUSTED = "quota_exhausted"  # billing, credit, monthly quota: retrying cannot help
    AUTH = "auth"  # bad or missing credentials, no access to the model
    INVALID_PARAMETER = "invalid_parameter"  # the provider refused the request's parameters
    CONTENT_REFUSED = "content_refused"  # the prompt or output failed the content policy
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # 5xx, connection errors, overload
    TIMEOUT = "timeout"  # no answer in time
    EMPTY_RESULT = "empty_result"  # a 200 without an image, video or text
    JOB_FAILED = "job_failed"  # a long-running job ended in failure at the provider
    BAD_OUTPUT = "bad_output"  # the output is not what it claims (HTML, truncated file)
    # GenHub's own media store failed while keeping the output: retry; says nothing about the
    # provider (not provider-side).
    STORAGE_UNAVAILABLE = "storage_unavailable"


# Failures that say something about the provider rather than the request: a circuit breaker
# counts these. Quota exhaustion is permanent for the task, yet it means the provider cannot
# serve anyone until someone pays, so it opens the breaker too.
PROVIDER_SIDE = frozenset(
    {
        ErrorClass.RATE_LIMITED,
        ErrorClass.QUOTA_EXHAUSTED,
        ErrorClass.AUTH,
        ErrorClass.PROVIDER_UNAVAILABLE,
        ErrorClass.TIMEOUT,
    }
)


class ProviderError(Exception):
    """A provider call failed.

    Args:
        message: Human-readable; carries the provider's own message where it has one, never a
            secret.
        code: Stable machine-readable code (the provider's error code where it has one, e.g.
            ``"InputTextSensitiveContentDetected"``, else a GenHub code like ``"EMPTY_RESULT"``).
        error_class: Overrides the class's default :class:`ErrorClass`.
        retry_after: Seconds the provider asked us to wait (``Retry-After``), if any.
        job_failed: For long-running jobs: the job itself failed, so a retry submits a new one
            (instead of polling the same job again, which is right for a failed poll request).
        request_id: The provider's request id, for support tickets.
    """

    retryable = False
    default_class = ErrorClass.PROVIDER_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        error_class: ErrorClass | None = None,
        retry_after: float | None = None,
        job_failed: bool = False,
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class or self.default_class
        self.code = code or self.error_class.value.upper()
        self.retry_after = retry_after
        self.job_failed = job_failed
        self.request_id = request_id

    @property
    def provider_side(self) -> bool:
        """Whether this failure counts against the provider's health (circuit breaker)."""
        return self.error_class in PROVIDER_SIDE


class RetryableError(ProviderError):
    """Worth another attempt: rate limits, 5xx, timeouts, connection errors, empty output."""

    retryable = True


class PermanentError(ProviderError):
    """Retrying cannot help: bad parameters, refused content, authentication, quota."""

    default_class = ErrorClass.INVALID_PARAMETER


class RateLimited(RetryableError):
    """429 or the provider's throttling code; honour ``retry_after``."""

    default_class = ErrorClass.RATE_LIMITED


class ProviderUnavailable(RetryableError):
    """5xx, connection refused or reset, overload."""

    default_class = ErrorClass.PROVIDER_UNAVAILABLE


class ProviderTimeout(RetryableError):
    """The provider did not answer within the configured timeout."""

    default_class = ErrorClass.TIMEOUT


class EmptyResult(RetryableError):
    """A success answer with no output: never recorded as a success."""

    default_class = ErrorClass.EMPTY_RESULT


class JobFailed(RetryableError):
    """A long-running job failed at the provider; a retry submits a new job."""

    default_class = ErrorClass.JOB_FAILED

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        retry_after: float | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(
            message, code=code, retry_after=retry_after, job_failed=True, request_id=request_id
        )


class BadOutput(RetryableError):
    """The output is not what it claims to be (an HTML page for a PNG, a truncated file)."""

    default_class = ErrorClass.BAD_OUTPUT


class QuotaExhausted(PermanentError):
    """Billing or quota exhausted (often a 400/402/403 "insufficient credit")."""

    default_class = ErrorClass.QUOTA_EXHAUSTED


class AuthFailed(PermanentError):
    """401/403: bad credentials or no access to the model."""

    default_class = ErrorClass.AUTH


class InvalidParameter(PermanentError):
    """The provider refused the request's parameters (a 400 that is not about content)."""

    default_class = ErrorClass.INVALID_PARAMETER


class ContentRefused(PermanentError):
    """The prompt or the output failed the provider's content policy."""

    default_class = ErrorClass.CONTENT_REFUSED
