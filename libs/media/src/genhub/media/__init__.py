"""GenHub's media store: generated images and videos streamed into S3-compatible object storage
(or a local folder), checked for what they really are, referenced from task results by
``MediaRef`` and served through time-limited URLs. See docs/media.md.

Typical use (a worker, after the provider answered)::

    store = build_store(load_settings(MediaSettings))
    ref = await store.put_url(provider_url, owner=task_id, kind="image")
    url = await store.url(ref.media_id)          # presigned S3 GET or signed gateway URL
"""

from genhub.media._backend import Backend, ObstoreBackend, StoredObject
from genhub.media._config import MediaSettings, build_store
from genhub.media._download import Downloader, redact
from genhub.media._errors import MediaError, PermanentMediaError, RetryableMediaError
from genhub.media._proto import image_entry, link_result, to_stored_media, video_entry
from genhub.media._ref import MIME_BY_EXT, MediaRef, key_for, mime_of, new_media_id, owner_of
from genhub.media._signing import MEDIA_PATH, SignatureInvalid, UrlSigner
from genhub.media._store import MediaStore
from genhub.media._sweep import Owners, SweepReport, sweep
from genhub.media._task_owners import TaskStoreOwners, referenced_media

__all__ = [
    "MEDIA_PATH",
    "MIME_BY_EXT",
    "Backend",
    "Downloader",
    "MediaError",
    "MediaRef",
    "MediaSettings",
    "MediaStore",
    "ObstoreBackend",
    "Owners",
    "PermanentMediaError",
    "RetryableMediaError",
    "SignatureInvalid",
    "StoredObject",
    "SweepReport",
    "TaskStoreOwners",
    "UrlSigner",
    "build_store",
    "image_entry",
    "key_for",
    "link_result",
    "mime_of",
    "new_media_id",
    "owner_of",
    "redact",
    "referenced_media",
    "sweep",
    "to_stored_media",
    "video_entry",
]
