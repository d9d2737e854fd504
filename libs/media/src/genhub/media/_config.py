"""Media settings (``GENHUB_MEDIA_*``, ``GENHUB_EGRESS_ALLOW``), read once at a service's edge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from obstore.store import LocalStore, S3Store
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from genhub.egress import EgressPolicy, Resolver
from genhub.media._backend import ObstoreBackend
from genhub.media._download import Downloader
from genhub.media._signing import UrlSigner
from genhub.media._store import MediaStore

if TYPE_CHECKING:
    from obstore.store import S3Config


class MediaSettings(BaseSettings):
    """Where media is kept and how it is fetched and served.

    ``media_backend="s3"`` needs ``media_s3_bucket`` (and, outside AWS, an endpoint);
    ``"local"`` needs ``media_url_keys`` (the gateway serves the files; with keys it serves S3
    files too, else S3 URLs are presigned). Secrets are ``SecretStr`` (masked in reprs).
    """

    model_config = SettingsConfigDict(env_prefix="GENHUB_", frozen=True, extra="ignore")

    # "" (default): no media store; results keep the providers' own URLs, as before.
    media_backend: Literal["", "s3", "local"] = ""
    media_prefix: str = "media/"
    # S3-compatible service (AWS S3, Volcengine TOS, Aliyun OSS, SeaweedFS, versitygw, ...)
    media_s3_bucket: str = ""
    media_s3_endpoint: str = ""  # e.g. http://127.0.0.1:7070; empty for AWS
    media_s3_region: str = "us-east-1"
    media_s3_access_key_id: SecretStr = SecretStr("")
    media_s3_secret_access_key: SecretStr = SecretStr("")
    media_s3_virtual_hosted: bool = False  # path-style by default: works with every service
    # Retries of one request (obstore's exponential backoff from 100 ms, within 30 s): few, so a
    # delete or a sign never hangs for minutes on an unreachable store (obstore's default is 10
    # within 3 min); a failed upload fails the attempt, which the worker retries anyway.
    media_s3_max_retries: int = Field(default=3, ge=0, le=10)
    # Local folder (one box)
    media_local_dir: Path = Path(".state/media")
    # Comma-separated HMAC keys for gateway-served URLs (first signs, all verify; >= 32 chars);
    # required by "local", optional for "s3" (without: presigned S3 GETs).
    media_url_keys: SecretStr = SecretStr("")
    media_public_url: str = ""  # e.g. https://api.example.com; empty: path-only URLs
    media_url_ttl_seconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    # Limits
    media_max_image_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    media_max_video_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    media_download_timeout_seconds: float = Field(default=300.0, gt=0)
    media_max_redirects: int = Field(default=3, ge=0, le=10)
    media_spool_dir: Path | None = None  # temp files while checking; None: the system's
    # Retention: objects older than this are deleted by `genhub-media sweep`; 0 keeps them.
    media_retention_days: float = Field(default=7.0, ge=0)
    # Egress exceptions for every outbound fetch: CIDRs and host names (see genhub.egress).
    egress_allow: str = ""

    @model_validator(mode="after")
    def _check(self) -> MediaSettings:
        if self.media_backend == "s3" and not self.media_s3_bucket:
            raise ValueError("GENHUB_MEDIA_S3_BUCKET is required with GENHUB_MEDIA_BACKEND=s3")
        keys = [k for k in self.media_url_keys.get_secret_value().split(",") if k.strip()]
        if any(len(k.strip()) < 32 for k in keys):
            raise ValueError("each GENHUB_MEDIA_URL_KEYS key needs at least 32 characters")
        if self.media_backend == "local" and not keys:
            raise ValueError(
                "GENHUB_MEDIA_URL_KEYS is required with GENHUB_MEDIA_BACKEND=local "
                "(comma-separated secrets of at least 32 characters)"
            )
        EgressPolicy.from_setting(self.egress_allow)  # raises ValueError naming the entry
        return self

    def egress_policy(self) -> EgressPolicy:
        """The egress rules with this deployment's exceptions."""
        return EgressPolicy.from_setting(self.egress_allow)

    def signer(self) -> UrlSigner | None:
        """The URL signer for gateway-served media (None without keys)."""
        value = self.media_url_keys.get_secret_value()
        return UrlSigner.from_setting(value, self.media_public_url) if value.strip() else None

    @property
    def enabled(self) -> bool:
        """Whether a media store is configured."""
        return bool(self.media_backend)

    def backend(self) -> ObstoreBackend:
        """The configured object store (ValueError when none is)."""
        if not self.enabled:
            raise ValueError("no media store configured (GENHUB_MEDIA_BACKEND is empty)")
        if self.media_backend == "local":
            self.media_local_dir.mkdir(parents=True, exist_ok=True)
            store: S3Store | LocalStore = LocalStore(self.media_local_dir.resolve(), mkdir=True)
            return ObstoreBackend(store, self.signer())
        config: dict[str, object] = {
            "region": self.media_s3_region,
            "virtual_hosted_style_request": self.media_s3_virtual_hosted,
        }
        if self.media_s3_endpoint:
            config["endpoint"] = self.media_s3_endpoint
        if self.media_s3_access_key_id.get_secret_value():
            config["access_key_id"] = self.media_s3_access_key_id.get_secret_value()
            config["secret_access_key"] = self.media_s3_secret_access_key.get_secret_value()
        store = S3Store(
            self.media_s3_bucket,
            config=cast("S3Config", config),
            client_options={"allow_http": self.media_s3_endpoint.startswith("http://")},
            retry_config={
                "max_retries": self.media_s3_max_retries,
                "retry_timeout": timedelta(seconds=30),
            },
        )
        # With URL keys the gateway serves the files (short URLs on the API's own origin, for
        # buckets clients cannot reach); without, clients get presigned GETs of the bucket.
        return ObstoreBackend(store, self.signer())


def build_store(
    settings: MediaSettings,
    resolver: Resolver | None = None,
    *,
    fetch: bool = True,
    policy: EgressPolicy | None = None,
) -> MediaStore:
    """The media store ``settings`` describe; ``fetch=False`` for a service that only serves
    and signs (the gateway), so it opens no outbound connection pool. ``policy`` replaces the
    settings' egress rules for downloads (a worker adds its provider's own base URL with
    ``EgressPolicy.allowing``). Close with ``aclose``."""
    downloader = (
        Downloader(
            policy or settings.egress_policy(),
            resolver,
            timeout=settings.media_download_timeout_seconds,
            max_redirects=settings.media_max_redirects,
        )
        if fetch
        else None
    )
    return MediaStore(
        settings.backend(),
        downloader,
        prefix=settings.media_prefix,
        max_image_bytes=settings.media_max_image_bytes,
        max_video_bytes=settings.media_max_video_bytes,
        url_ttl_seconds=settings.media_url_ttl_seconds,
        spool_dir=settings.media_spool_dir,
    )
