"""domain.ssrf: every refused form of a webhook URL, and what stays allowed."""

from __future__ import annotations

import ipaddress

import pytest

from domain.ssrf import (
    TargetError,
    check_public_target,
    parse_ipv4_host,
    parse_target,
    refusal_reason,
)

PUBLIC = ["93.184.216.34"]

REFUSED_LITERALS = [
    "http://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://10.0.0.1/hook",
    "https://10.255.255.255/",
    "https://172.16.0.1/",
    "https://172.31.255.255/",
    "https://192.168.0.10/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://100.127.255.254/",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://[fe80::1]/",
    "https://[febf::1]/",
    "https://[fec0::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[::ffff:7f00:1]/",
    "https://[::127.0.0.1]/",
    "https://[64:ff9b::10.0.0.1]/",
    "https://[2002:c0a8:101::1]/",
    "https://[fe80::1%25eth0]/",
]
NUMERIC_SPELLINGS = [
    ("https://2130706433/", "127.0.0.1"),
    ("https://0x7f000001/", "127.0.0.1"),
    ("https://0177.0.0.1/", "127.0.0.1"),
    ("https://0x7f.0.0.1/", "127.0.0.1"),
    ("https://127.1/", "127.0.0.1"),
    ("https://127.0.1/", "127.0.0.1"),
    ("https://0/", "0.0.0.0"),
    ("https://3232235777/", "192.168.1.1"),
    ("https://0xA9FEA9FE/", "169.254.169.254"),
    ("https://134744072/", "8.8.8.8"),  # even public: non-canonical spellings are refused
    ("https://010.8.8.8/", "8.8.8.8"),
    ("https://127.0.0.1./", "127.0.0.1"),
]
MALFORMED = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "example.com/hook",
    "//example.com/hook",
    "https://",
    "https:///path",
    "",
    "https://user:pass@example.com/",
    "https://user@example.com/",
    "https://example.com:0/",
    "https://example.com:99999/",
    "https://exa mple.com/",
    "https://example.com/\thook",
    "https://example.com\\@127.0.0.1/",
    "https://exämple.com/",
    "https://127.0.0.1%2f@x/",
    "https://1.2.3.4.5/",
    "https://256.0.0.1/",
    "https://08.0.0.1/",
    "https://foo.123/",
    "https://-bad.example/",
    "https://" + "a" * 64 + ".example/",
    "https://example.com/" + "a" * 2048,
]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
def test_non_public_literal_addresses_are_refused(url: str) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target(url, PUBLIC)
    assert caught.value.code == "url_not_allowed"
    assert caught.value.param == "url"


@pytest.mark.parametrize(("url", "meaning"), NUMERIC_SPELLINGS)
def test_decimal_hex_octal_and_short_ipv4_spellings_are_refused(url: str, meaning: str) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target(url, PUBLIC)
    assert caught.value.code == "url_not_allowed"
    assert meaning in caught.value.message


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target(url, PUBLIC)
    assert caught.value.code in {"url_invalid", "url_not_allowed"}


@pytest.mark.parametrize("value", [None, 42, ["https://example.com"], {"url": "x"}])
def test_non_strings_are_invalid(value: object) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target(value, PUBLIC)
    assert caught.value.code == "url_invalid"


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "https://localhost:8443/x", "https://LOCALHOST./", "http://a.localhost/"],
)
def test_localhost_names_are_refused_without_a_lookup(url: str) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target(url, PUBLIC)  # even if DNS lied and said "public"
    assert caught.value.code == "url_not_allowed"


@pytest.mark.parametrize(
    "resolved",
    [
        ["127.0.0.1"],
        ["10.0.0.7"],
        ["172.20.1.1"],
        ["192.168.1.1"],
        ["169.254.169.254"],
        ["100.64.1.1"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1"],
        ["fe80::1%eth0"],
        ["::ffff:127.0.0.1"],
        ["93.184.216.34", "10.0.0.1"],  # one private record is enough
        [],  # does not resolve
        ["not-an-address"],
    ],
)
def test_names_resolving_to_non_public_addresses_are_refused(resolved: list[str]) -> None:
    with pytest.raises(TargetError) as caught:
        check_public_target("https://hooks.merchant.example/pay", resolved)
    assert caught.value.code == "url_not_allowed"


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("https://hooks.merchant.example/pay", ["93.184.216.34"]),
        ("http://hooks.merchant.example:8080/pay?x=1", ["93.184.216.34", "2606:2800:220:1::1"]),
        ("https://8.8.8.8/hook", []),
        ("https://[2606:4700:4700::1111]/hook", []),
        ("HTTPS://Hooks.Merchant.Example./pay", ["1.1.1.1"]),
        ("https://under_score.example/", ["1.1.1.1"]),
        ("https://[64:ff9b::8.8.8.8]/", []),
    ],
)
def test_public_targets_pass(url: str, resolved: list[str]) -> None:
    check_public_target(url, resolved)


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://localhost:38099/hook", ["127.0.0.1"]),
        ("http://127.0.0.1:38099/hook", []),
        ("http://[::1]:38099/hook", []),
        ("http://receiver.test/hook", ["::1", "127.0.0.1"]),
    ],
)
def test_allow_loopback_admits_loopback_only(url: str, resolved: list[str]) -> None:
    check_public_target(url, resolved, allow_loopback=True)
    with pytest.raises(TargetError):
        check_public_target(url, resolved, allow_loopback=False)


@pytest.mark.parametrize(
    "url", ["https://10.0.0.1/", "https://[::ffff:127.0.0.1]/", "https://2130706433/"]
)
def test_allow_loopback_still_refuses_private_and_disguised_loopback(url: str) -> None:
    with pytest.raises(TargetError):
        check_public_target(url, [], allow_loopback=True)


def test_parse_target_reports_host_port_and_literal() -> None:
    named = parse_target("https://Hooks.Example.com./x")
    assert (named.scheme, named.host, named.port, named.address) == (
        "https",
        "hooks.example.com",
        443,
        None,
    )
    literal = parse_target("http://8.8.4.4:8080/")
    assert (literal.port, literal.address) == (8080, ipaddress.IPv4Address("8.8.4.4"))
    assert parse_target("http://[2606:4700::1]/").address == ipaddress.IPv6Address("2606:4700::1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("0x", "0.0.0.0"),
        ("4294967296", None),
        ("1.2.3.256", None),
        ("1.2.3.4.5", None),
        ("09", None),
        ("0xg", None),
    ],
)
def test_whatwg_ipv4_parsing(host: str, expected: str | None) -> None:
    parsed = parse_ipv4_host(host)
    assert (str(parsed) if parsed else None) == expected


def test_refusal_reason_names_the_range() -> None:
    assert refusal_reason(ipaddress.ip_address("169.254.169.254")) == "a link-local address"
    assert refusal_reason(ipaddress.ip_address("100.64.0.1")) == "a shared (CGNAT) address"
    assert refusal_reason(ipaddress.ip_address("8.8.8.8")) is None
