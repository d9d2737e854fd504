"""The egress address and URL rules (no network)."""

from __future__ import annotations

import ipaddress

import pytest

from genhub.egress import EgressPolicy, EgressRefused, address_refusal
from genhub.media._download import redact


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.1.2", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not a public"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_non_public_addresses_are_refused(address: str, words: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert words in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x.png", "http"),
        ("file:///etc/passwd", "http"),
        ("gopher://example.com/", "http"),
        ("http:///x.png", "no host"),
        ("https://user:pw@example.com/x.png", "credentials"),
        ("https://example.com:99999/x.png", "valid URL"),
        ("https://[x/", "valid URL"),
        ("http://127.0.0.1:8080/x.png", "loopback"),
        ("http://10.0.0.7/x.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:a00:1]/x", "private"),
    ],
)
def test_urls_refused_without_dns(url: str, words: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().parse(url)
    assert words in caught.value.reason


def test_allow_list_admits_named_networks_and_hosts() -> None:
    policy = EgressPolicy.from_setting("127.0.0.0/8, fake-ark.test ,10.9.0.0/16")
    policy.parse("http://127.0.0.1:9000/x")
    assert policy.address_refusal(ipaddress.ip_address("10.9.3.4")) is None
    assert policy.address_refusal(ipaddress.ip_address("10.8.3.4")) is not None
    assert policy.host_allowed("FAKE-ARK.test.")
    with pytest.raises(EgressRefused):
        policy.parse("http://192.168.0.1/x")


def test_malformed_allow_list_entry_is_named() -> None:
    with pytest.raises(ValueError, match="neither"):
        EgressPolicy.from_setting("10.0.0.0/33")


def test_allowing_a_provider_base_url() -> None:
    base = EgressPolicy().allowing("http://127.0.0.1:41234/api/v3")
    base.parse("http://127.0.0.1:41234/files/a.png")
    named = EgressPolicy().allowing("http://fake-provider.internal:8080/")
    assert named.host_allowed("fake-provider.internal")
    with pytest.raises(EgressRefused):
        EgressPolicy().parse("http://127.0.0.1:41234/files/a.png")


def test_https_only_policy_for_user_urls() -> None:
    policy = EgressPolicy(schemes=frozenset({"https"}))
    with pytest.raises(EgressRefused, match="https://"):
        policy.parse("http://example.com/a.png")


def test_urls_in_messages_keep_host_and_port_and_lose_credentials() -> None:
    shown = redact("https://user:secret@cdn.example:8443/a/b.png?X-Amz-Signature=abc#frag")
    assert shown == "https://cdn.example:8443/a/b.png"
    local = "http://[::1]:9000/v1/videos/v_1/content"
    assert redact(local) == local
    assert redact("data:image/png;base64,AAAA") == "data:image/png;base64,…"
