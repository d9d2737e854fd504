"""The contract between the dispatcher and provider adapters.

A provider package implements :class:`Provider` and registers a factory under the
``genhub.providers`` entry-point group; the dispatcher finds it by name, with no edit to core code.
"""

from genhub.providers.sdk.catalogue import load_catalogue
from genhub.providers.sdk.errors import (
    PROVIDER_SIDE,
    AuthFailed,
    BadOutput,
    ContentRefused,
    EmptyResult,
    ErrorClass,
    InvalidParameter,
    JobFailed,
    PermanentError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    RetryableError,
)
from genhub.providers.sdk.protocol import (
    Call,
    CallConfig,
    Finished,
    Outcome,
    Pending,
    Provider,
    Submitted,
)
from genhub.providers.sdk.registry import (
    COMPATIBLE_ENTRY_POINT_GROUP,
    ENTRY_POINT_GROUP,
    available_providers,
    compatible_apis,
    load_provider,
)

__all__ = [
    "COMPATIBLE_ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUP",
    "PROVIDER_SIDE",
    "AuthFailed",
    "BadOutput",
    "Call",
    "CallConfig",
    "ContentRefused",
    "EmptyResult",
    "ErrorClass",
    "Finished",
    "InvalidParameter",
    "JobFailed",
    "Outcome",
    "Pending",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RateLimited",
    "RetryableError",
    "Submitted",
    "available_providers",
    "compatible_apis",
    "load_catalogue",
    "load_provider",
]
