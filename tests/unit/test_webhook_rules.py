"""domain.webhooks and the pure parsing of ingress.webhooks: secrets, events, ids, bodies."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest

from domain.errors import RequestError
from domain.ssrf import TargetError
from domain.webhooks import (
    EVENT_TYPES,
    MIN_SECRET_BYTES,
    is_strong_secret,
    is_webhook_id,
    new_secret,
    new_webhook_id,
    parse_events,
    parse_secret,
    secret_material,
    webhook_endpoint_view,
)
from ingress.webhooks import parse_create_body

KNOWN_EVENTS = [
    "payment.created",
    "payment.pending",
    "payment.requires_action",
    "payment.authorized",
    "payment.success",
    "payment.failed",
    "payment.cancelled",
    "payment.expired",
    "payment.unknown",
    "payment.partially_refunded",
    "payment.refunded",
    "refund.processed",
    "refund.failed",
    "*",
]


def test_generated_secrets_are_whsec_and_32_random_bytes() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert base64.b64decode(secret.removeprefix("whsec_"), validate=True).__len__() == 32
        assert is_strong_secret(secret)
        assert parse_secret(secret) == secret


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(b"\x01" + secrets.token_bytes(MIN_SECRET_BYTES - 1)).decode(),
        "whsec_" + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("="),
        "whsec_" + secrets.token_hex(24),
        "whsec_" + secrets.token_hex(32).upper(),
        "whsec_" + base64.b64encode(secrets.token_bytes(64)).decode(),
    ],
)
def test_strong_supplied_secrets_are_accepted(secret: str) -> None:
    assert parse_secret(secret) == secret


@pytest.mark.parametrize(
    "secret",
    [
        "webhook_secret_key",  # the spec's example: no prefix
        "whsec_",  # nothing after the prefix
        "whsec_short",
        "WHSEC_" + secrets.token_hex(32),
        "sk_" + secrets.token_hex(32),
        " whsec_" + secrets.token_hex(32),
        "whsec_" + secrets.token_hex(23),  # 23 bytes of hex: one short
        "whsec_" + base64.b64encode(secrets.token_bytes(23)).decode(),
        "whsec_" + "00" * 32,  # long enough, but degenerate
        "whsec_" + "A" * 64,
        "whsec_" + "abc" * 30,  # base64 of a short repeating pattern
        "whsec_" + "password1234" * 3,
        "whsec_" + secrets.token_hex(24) + "!",  # not hex, not base64
        "whsec_" + "é" * 40,
        "whsec_" + secrets.token_hex(200),  # longer than 256 characters
    ],
)
def test_weak_or_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_secret(secret)
    assert (caught.value.code, caught.value.param) == ("secret_too_weak", "secret")
    assert len(secret) < 8 or secret not in caught.value.message  # never echoed


def test_secret_absent_means_generate_and_non_string_is_invalid() -> None:
    assert parse_secret(None) is None
    with pytest.raises(RequestError) as caught:
        parse_secret(12345)
    assert caught.value.code == "parameter_invalid"


def test_hex_is_read_before_base64_so_it_is_not_overcounted() -> None:
    assert secret_material("whsec_" + "ab" * 24) == bytes([0xAB]) * 24
    assert secret_material("no_prefix") is None


def test_known_event_types_are_exactly_the_documented_list() -> None:
    assert sorted(EVENT_TYPES) == sorted(KNOWN_EVENTS)
    assert parse_events(KNOWN_EVENTS) == KNOWN_EVENTS


def test_events_are_deduplicated_in_order() -> None:
    assert parse_events(["payment.failed", "payment.success", "payment.failed"]) == [
        "payment.failed",
        "payment.success",
    ]


@pytest.mark.parametrize(
    ("events", "param"),
    [
        (["payment.success", "payment.nope"], "events[1]"),
        (["PAYMENT.SUCCESS"], "events[0]"),
        (["payment.success", 3], "events[1]"),
        (["refund.created"], "events[0]"),
        (["payment.*"], "events[0]"),
    ],
)
def test_unknown_events_name_their_index(events: list[Any], param: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_events(events)
    assert (caught.value.status, caught.value.param) == (400, param)
    assert caught.value.code == "event_type_unknown"


@pytest.mark.parametrize("events", [[], "payment.success", None, {"a": 1}, ["*"] * 15])
def test_events_must_be_a_short_non_empty_list(events: Any) -> None:
    with pytest.raises(RequestError) as caught:
        parse_events(events)
    assert caught.value.param == "events"


def test_webhook_ids() -> None:
    made = new_webhook_id()
    assert made.startswith("we_") and len(made) == 29 and is_webhook_id(made)
    assert not is_webhook_id("we_short")
    assert not is_webhook_id("PAY_" + made[3:])
    assert not is_webhook_id(made.lower())


def test_view_never_has_the_secret() -> None:
    row = {
        "webhook_id": new_webhook_id(),
        "url": "https://example.com/h",
        "events": ["*"],
        "status": "enabled",
        "description": None,
        "created_at": None,
        "secret_ciphertext": "sealed",
        "merchant_id": "m",
    }
    view = webhook_endpoint_view(row)
    assert set(view) == {"webhook_id", "url", "events", "status", "description", "created_at"}


def test_create_body_parsing() -> None:
    body = {"url": "https://hooks.example.com/x", "events": ["payment.success"]}
    parsed = parse_create_body(body)
    assert parsed == {**body, "secret": None, "description": ""}
    for bad, param in (
        ({**body, "status": "disabled"}, "status"),
        ({"events": ["*"]}, "url"),
        ({"url": "https://a.example"}, "events"),
    ):
        with pytest.raises(RequestError) as caught:
            parse_create_body(bad)
        assert caught.value.param == param
    with pytest.raises(TargetError):
        parse_create_body({**body, "url": "ftp://example.com"})
