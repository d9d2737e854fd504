"""Outbound HTTP that GenHub makes on a user's behalf (provider result URLs, reference images,
webhooks), guarded against server-side request forgery.

Rules (docs/media.md, "Fetching URLs safely"): http(s) only; every address a host name resolves
to must be public (no loopback, private, link-local, multicast, reserved or unspecified address,
IPv4-mapped IPv6 included) unless the deployment allows it explicitly; the connection goes to the
very address that was checked (DNS is resolved once per connection, so a rebinding answer cannot
slip in between check and connect); redirects are followed by hand and each hop is checked again.
"""

from genhub.egress._client import check_url, guarded_client, open_stream
from genhub.egress._errors import EgressRefused, HttpStatusError
from genhub.egress._policy import EgressPolicy, address_refusal
from genhub.egress._resolver import Resolver, SystemResolver
from genhub.egress._transport import GuardedTransport

__all__ = [
    "EgressPolicy",
    "EgressRefused",
    "GuardedTransport",
    "HttpStatusError",
    "Resolver",
    "SystemResolver",
    "address_refusal",
    "check_url",
    "guarded_client",
    "open_stream",
]
