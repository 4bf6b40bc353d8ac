"""The network guard's address and URL rules. Nothing here opens a connection.

The operator's MMSC and SMS gateway may be private (RFC 1918); a customer's URL
(media, postbacks) never may, and the metadata service is refused to everyone."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from mmsapi.carrier.mm7_client import CarrierUnavailable, submit
from mmsapi.carrier.sms import HttpSms
from mmsapi.errors import ApiError
from mmsapi.media.fetch import fetch_media
from mmsapi.media.guard import (
    GuardError,
    NetworkError,
    check_address,
    parse_target,
    resolve_checked,
)
from mmsapi.media.types import MediaKind
from mmsapi.services.postback import DeliveryError
from mmsapi.services.postback import deliver as deliver_postback
from mmsapi.settings import Settings

REFUSED = [
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.1", "private"),
    ("192.168.1.10", "private"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("64:ff9b::a00:1", "NAT64, embeds 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64, embeds 169.254.169.254"),
    ("2002:a00:1::", "6to4, embeds 10.0.0.1"),
    ("2002:7f00:1::", "6to4, embeds 127.0.0.1"),
    # Teredo client 10.0.0.1, stored bit-inverted in the last 32 bits.
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo, embeds 10.0.0.1"),
]

PUBLIC = ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888"]


def fake_resolver(answers: dict[str, list[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        return answers[host]

    return resolve


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_non_global_address_is_refused(address: str, why: str) -> None:
    # Given an address outside global unicast
    # When it is checked without the loopback flag
    with pytest.raises(GuardError) as raised:
        check_address(address, allow_loopback=False)
    # Then it is refused, and the reason names the range
    assert why in raised.value.reason
    assert raised.value.reason.startswith("address ")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_address_is_accepted(address: str) -> None:
    # Given a global unicast address (never connected to here)
    # When it is checked, Then it passes
    assert str(check_address(address, allow_loopback=False)) == address


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_with_the_flag(address: str) -> None:
    # Given the local runtime's flag
    # When a loopback address is checked, Then it passes
    check_address(address, allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "fc00::1", "::ffff:10.0.0.1"],
)
def test_private_ranges_stay_refused_with_the_flag(address: str) -> None:
    # Given the loopback flag
    # When a private address is checked, Then it is still refused
    with pytest.raises(GuardError):
        check_address(address, allow_loopback=True)


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::"])
def test_tunnels_to_loopback_stay_refused_with_the_flag(address: str) -> None:
    # Given the loopback flag, When loopback is reached through a transition prefix
    # Then it is refused: only plain loopback is a local-runtime convenience
    with pytest.raises(GuardError):
        check_address(address, allow_loopback=True)


def test_name_resolving_to_loopback_is_refused() -> None:
    # Given a DNS name whose only record is loopback
    resolver = fake_resolver({"localtest.example": ["127.0.0.1"]})
    # When it is resolved without the flag
    with pytest.raises(GuardError) as raised:
        resolve_checked("localtest.example", 80, allow_loopback=False, resolver=resolver)
    # Then it is refused, and the reason names the host
    assert "loopback" in raised.value.reason
    assert "localtest.example" in raised.value.reason


def test_name_resolving_to_loopback_is_allowed_with_the_flag() -> None:
    # Given the same name and the flag
    resolver = fake_resolver({"localtest.example": ["127.0.0.1", "::1"]})
    # When it is resolved, Then both addresses come back for the pinned connection
    assert resolve_checked("localtest.example", 80, allow_loopback=True, resolver=resolver) == [
        "127.0.0.1",
        "::1",
    ]


def test_one_private_record_refuses_the_whole_name() -> None:
    # Given a name with one public and one private record
    resolver = fake_resolver({"mixed.example": ["93.184.215.14", "10.1.2.3"]})
    # When it is resolved
    with pytest.raises(GuardError) as raised:
        resolve_checked("mixed.example", 443, allow_loopback=True, resolver=resolver)
    # Then the host is refused because of the private record
    assert "10.1.2.3 is private" in raised.value.reason


def test_public_name_returns_its_addresses_in_order_once() -> None:
    # Given a name with duplicate public records
    resolver = fake_resolver({"cdn.example": ["93.184.215.14", "2606:4700::1", "93.184.215.14"]})
    # When it is resolved, Then each vetted address comes once, in resolver order
    assert resolve_checked("cdn.example", 443, allow_loopback=False, resolver=resolver) == [
        "93.184.215.14",
        "2606:4700::1",
    ]


def test_ip_literal_host_skips_the_resolver() -> None:
    # Given a resolver that must not be called
    def boom(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolver called for an IP literal")

    # When literal hosts are resolved, Then they are checked directly
    assert resolve_checked("8.8.8.8", 80, allow_loopback=False, resolver=boom) == ["8.8.8.8"]
    with pytest.raises(GuardError):
        resolve_checked("10.0.0.1", 80, allow_loopback=True, resolver=boom)


def test_name_without_address_is_a_network_error() -> None:
    # Given a name with no records, When it is resolved, Then it fails (not a refusal)
    with pytest.raises(NetworkError) as raised:
        resolve_checked(
            "void.example", 80, allow_loopback=False, resolver=fake_resolver({"void.example": []})
        )
    assert not isinstance(raised.value, GuardError)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/a.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("//example.com/a.png", "only http and https"),
        ("http://user:pass@example.com/a.png", "credentials"),
        ("http://user@example.com/a.png", "credentials"),
        ("http:///a.png", "no host"),
        ("http://exa mple.com/a.png", "invalid host"),
        ("http://%31%32%37.0.0.1/a.png", "invalid host"),
        ("http://example.com:99999/a.png", "invalid URL"),
    ],
)
def test_url_refusals(url: str, why: str) -> None:
    # Given a URL the guard must not request
    # When it is parsed
    with pytest.raises(GuardError) as raised:
        parse_target(url)
    # Then it is refused with a clear reason
    assert why in raised.value.reason


def test_target_keeps_port_and_requotes_the_path() -> None:
    # Given a URL with an explicit port, an IDN host, spaces and a query
    target = parse_target("https://BÜCHER.example:8443/a b/ü.png?x=1 2")
    # Then the host is IDNA, the Host header carries the port, the request line is ASCII
    assert target.host == "xn--bcher-kva.example"
    assert target.port == 8443
    assert target.host_header == "xn--bcher-kva.example:8443"
    assert target.request_target == "/a%20b/%C3%BC.png?x=1%202"


def test_target_default_port_and_ipv6_literal() -> None:
    # Given default ports and an IPv6 literal
    # Then the Host header omits default ports and brackets IPv6 hosts
    assert parse_target("http://example.com").host_header == "example.com"
    assert parse_target("http://example.com").request_target == "/"
    v6 = parse_target("http://[2606:4700::1]:8080/x")
    assert (v6.host, v6.port, v6.host_header) == ("2606:4700::1", 8080, "[2606:4700::1]:8080")


# ---- operator-configured endpoints (MMSC, SMS gateway) may be private ------------------

RFC1918_ADDRESSES = ["10.0.0.1", "10.20.30.40", "172.16.0.1", "172.31.255.1", "192.168.1.10"]
# Refused even for the operator's endpoints: the metadata service and everything
# that is not plainly RFC 1918 (tunnels that embed a private address included).
NEVER_ALLOWED = [
    ("169.254.169.254", "link-local"),
    ("::ffff:169.254.169.254", "link-local"),
    ("fd00:ec2::254", "unique-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared address space"),
    ("0.0.0.0", "unspecified"),
    ("64:ff9b::a00:1", "NAT64, embeds 10.0.0.1"),
    ("2002:a00:1::", "6to4, embeds 10.0.0.1"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("127.0.0.1", "loopback"),
]


@pytest.mark.parametrize("address", [*RFC1918_ADDRESSES, "::ffff:10.1.2.3"])
def test_private_address_is_accepted_only_with_allow_private(address: str) -> None:
    # Given an RFC 1918 address (an MMSC behind a VPN)
    # When it is checked for a customer's URL, Then it is refused
    with pytest.raises(GuardError, match="private"):
        check_address(address, allow_loopback=True)
    # When it is checked for the operator's endpoint, Then it passes
    assert check_address(address, allow_loopback=False, allow_private=True)


@pytest.mark.parametrize(("address", "why"), NEVER_ALLOWED)
def test_metadata_and_other_ranges_stay_refused_with_allow_private(address: str, why: str) -> None:
    # Given an address that is not RFC 1918
    # When it is checked for the operator's endpoint
    with pytest.raises(GuardError) as raised:
        check_address(address, allow_loopback=False, allow_private=True)
    # Then it is refused all the same
    assert why in raised.value.reason


def test_host_with_one_metadata_record_is_refused_with_allow_private() -> None:
    # Given an MMSC name resolving to a private address and to the metadata service
    resolver = fake_resolver({"mmsc.carrier.example": ["10.0.0.5", "169.254.169.254"]})
    # When it is resolved for the operator's endpoint, Then the whole host is refused
    with pytest.raises(GuardError, match="link-local"):
        resolve_checked(
            "mmsc.carrier.example", 443, allow_loopback=False, resolver=resolver, allow_private=True
        )
    # And a name with private addresses only is accepted
    private_only = fake_resolver({"mmsc.carrier.example": ["10.0.0.5", "10.0.0.6"]})
    assert resolve_checked(
        "mmsc.carrier.example", 443, allow_loopback=False, resolver=private_only, allow_private=True
    ) == ["10.0.0.5", "10.0.0.6"]


class StopAtConnect:
    """Stands in for the guard's connect step: records the vetted addresses, connects to
    nothing, and fails like an unreachable host."""

    reason = "stopped before connecting (test)"

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, target: object, addresses: Sequence[str], **_: object) -> object:
        self.addresses.extend(addresses)
        raise NetworkError(self.reason)


@pytest.fixture
def stop_at_connect(monkeypatch: pytest.MonkeyPatch) -> StopAtConnect:
    from mmsapi.media import guard

    stub = StopAtConnect()
    monkeypatch.setattr(guard, "_connect", stub)
    return stub


def _settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_mm7_submit_reaches_a_private_mmsc(stop_at_connect: StopAtConnect) -> None:
    # Given an operator-configured MMSC on a private address
    # When a SubmitReq is posted to it
    with pytest.raises(CarrierUnavailable) as raised:
        submit(
            "http://10.20.30.40:8080/mm7",
            b"<soap/>",
            "text/xml",
            username="",
            password="",
            timeout=1,
            settings=_settings(allow_loopback_media=False),
        )
    # Then the guard lets it through to the connect step (not a guard refusal)
    assert stop_at_connect.addresses == ["10.20.30.40"]
    assert StopAtConnect.reason in raised.value.reason


def test_mm7_submit_to_the_metadata_service_is_refused(stop_at_connect: StopAtConnect) -> None:
    # Given an MMSC URL pointing at the instance metadata service
    # When a SubmitReq is posted to it
    with pytest.raises(CarrierUnavailable) as raised:
        submit(
            "http://169.254.169.254/latest/meta-data/",
            b"<soap/>",
            "text/xml",
            username="",
            password="",
            timeout=1,
            settings=_settings(allow_loopback_media=False),
        )
    # Then the guard refuses it before any connection
    assert "link-local" in raised.value.reason
    assert stop_at_connect.addresses == []


def test_sms_gateway_on_a_private_address_is_reached(stop_at_connect: StopAtConnect) -> None:
    # Given the operator's HTTP SMS gateway on a private address
    gateway = HttpSms(_settings(sms_url="http://192.168.7.8/sms", allow_loopback_media=False))
    # When an SMS is sent, Then the request gets past the guard
    with pytest.raises(CarrierUnavailable, match="stopped before connecting"):
        gateway.send("14045550100", "28444", "hello")
    assert stop_at_connect.addresses == ["192.168.7.8"]


def test_postback_to_a_private_address_stays_refused(stop_at_connect: StopAtConnect) -> None:
    # Given a customer's postback URL on a private address
    # When a postback is delivered
    with pytest.raises(DeliveryError, match="private"):
        deliver_postback(
            "http://10.20.30.40/postback",
            b"<postback/>",
            "secret",
            "event-1",
            settings=_settings(allow_loopback_media=True),
        )
    # Then nothing was connected to
    assert stop_at_connect.addresses == []


def test_media_from_a_private_address_stays_refused(stop_at_connect: StopAtConnect) -> None:
    # Given a customer's media URL on a private address
    # When it is fetched for a slide
    with pytest.raises(ApiError) as raised:
        fetch_media(
            "http://192.168.1.10/cat.jpg",
            MediaKind.IMAGE,
            1,
            1_000_000,
            settings=_settings(allow_loopback_media=True),
        )
    # Then the slide's "could not copy" error names the refusal, and nothing was connected to
    assert raised.value.code == "E351"
    assert "private" in raised.value.info
    assert stop_at_connect.addresses == []
