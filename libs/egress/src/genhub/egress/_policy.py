"""Which URLs and addresses GenHub may reach on a user's behalf."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from genhub.egress._errors import EgressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached by default, or None when it is a public address.

    Loopback, RFC 1918/4193 private, link-local (169.254.0.0/16, home of cloud metadata
    services such as 169.254.169.254), multicast, reserved, unspecified and other non-global
    ranges (100.64.0.0/10 carrier-grade NAT, documentation ranges) are refused. An IPv4-mapped
    IPv6 address (``::ffff:10.0.0.1``) is judged as the IPv4 address it carries.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The rules for outbound URLs.

    ``allowed_networks`` and ``allowed_hosts`` are the deployment's explicit exceptions: an
    address inside one of the networks, or a host named exactly (case-insensitively), may be
    reached even though it is not public. Use them for a provider whose base URL is itself
    local (the test fakes) or an in-cluster webhook receiver; never for user input at large.
    """

    schemes: frozenset[str] = frozenset({"http", "https"})
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_setting(
        cls, value: str, *, schemes: Iterable[str] = ("http", "https")
    ) -> EgressPolicy:
        """A policy from a comma-separated allow-list of CIDRs, addresses and host names
        (``GENHUB_EGRESS_ALLOW``, e.g. ``"127.0.0.0/8,fake-ark.test"``); ValueError names a
        malformed entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in value.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or " " in entry:
                raise ValueError(f"{entry!r} is neither a network (CIDR) nor a host name")
            hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(schemes), tuple(networks), frozenset(hosts))

    def allowing(self, url: str) -> EgressPolicy:
        """This policy plus the host of ``url`` (e.g. a provider's own base URL, which the
        operator configured and which may be local): its address when the host is an IP
        literal, its name otherwise."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            return self
        try:
            network = ipaddress.ip_network(host)
        except ValueError:
            return EgressPolicy(self.schemes, self.allowed_networks, self.allowed_hosts | {host})
        return EgressPolicy(self.schemes, (*self.allowed_networks, network), self.allowed_hosts)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is named in the allow-list (no address check then)."""
        return host.lower().rstrip(".") in self.allowed_hosts

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached under this policy, or None."""
        if any(address in net for net in self.allowed_networks):
            return None
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None and any(mapped in net for net in self.allowed_networks):
            return None
        return address_refusal(address)

    def parse(self, url: str) -> SplitResult:
        """``url`` split, after the checks that need no DNS: scheme, host present, no
        credentials, a valid port, and (for an IP literal) the address rules.

        Raises EgressRefused with the reason.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise EgressRefused("is not a valid URL") from None
        if parts.scheme not in self.schemes:
            allowed = " or ".join(f"{s}://" for s in sorted(self.schemes))
            raise EgressRefused(f"must be an {allowed} URL")
        if not host:
            raise EgressRefused("has no host")
        if parts.username is not None or parts.password is not None:
            raise EgressRefused("must not carry credentials")
        literal = ip_literal(host)
        if literal is not None:
            refusal = self.address_refusal(literal)
            if refusal is not None:
                raise EgressRefused(f"points at {literal}, {refusal}")
        return parts


def ip_literal(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (brackets already removed), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
