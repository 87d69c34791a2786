"""The pure parts of Idempotency-Key and of the rate limiter: no IO."""

from __future__ import annotations

import hashlib
import json

import pytest

from domain.errors import RequestError
from ingress.idempotency import (
    MAX_KEY_CHARS,
    KeyInUseError,
    KeyReusedError,
    canonical_body,
    fingerprint,
    fingerprint_key,
    idempotent,
    is_storable,
    parse_key,
    policy_of,
)
from ingress.idempotency_store import cache_key
from ingress.ratelimit import Decision, decision_from_reply, retry_after_s

PATH = "/api/v1/payments"
BODY = {"amount_paisa": 10000, "currency": "INR", "metadata": {"b": "2", "a": "1"}}


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    compact = json.dumps(BODY, separators=(",", ":")).encode()
    spaced = b'{ "metadata" : {"a": "1",\n "b": "2"},\t"currency": "INR", "amount_paisa": 10000 }'
    assert fingerprint("POST", PATH, compact) == fingerprint("POST", PATH, spaced)
    assert fingerprint("post", PATH, compact) == fingerprint("POST", PATH, compact)
    assert len(fingerprint("POST", PATH, compact)) == 64


@pytest.mark.parametrize(
    ("other_method", "other_path", "other_body"),
    [
        ("POST", PATH, {**BODY, "amount_paisa": 10001}),
        ("POST", PATH, {**BODY, "amount_paisa": 10000.0}),  # a float is another request
        ("POST", PATH, {**BODY, "metadata": {"a": "1"}}),
        ("POST", PATH + "/PAY_1/refund", BODY),
        ("PUT", PATH, BODY),
    ],
)
def test_fingerprint_changes_with_method_path_or_content(
    other_method: str, other_path: str, other_body: dict[str, object]
) -> None:
    base = fingerprint("POST", PATH, json.dumps(BODY).encode())
    assert fingerprint(other_method, other_path, json.dumps(other_body).encode()) != base


def test_non_json_bodies_are_taken_byte_for_byte() -> None:
    assert canonical_body(b"not json") == b"raw:not json"
    assert canonical_body(b'{"a": 1, "a": 2}').startswith(b"raw:")  # duplicate keys
    assert canonical_body(b'{"a": NaN}').startswith(b"raw:")
    assert canonical_body(b"\xff\xfe").startswith(b"raw:")
    assert canonical_body(b"") == b"raw:"
    assert canonical_body('{"b": "é", "a": [1, 2]}'.encode()) == 'json:{"a":[1,2],"b":"é"}'.encode()
    # the raw form can never collide with a canonical JSON form
    assert fingerprint("POST", PATH, b'json:{"a":1}') != fingerprint("POST", PATH, b'{"a":1}')


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (["8e03978e-40d5-43e8-bc93-6894a57f9324"], "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        (['"8e03978e-40d5"'], "8e03978e-40d5"),  # the IETF draft's sf-string form
        ([r'"a\"b\\c"'], 'a"b\\c'),
        (["  padded  "], "padded"),
        (["order 12345: retry #2"], "order 12345: retry #2"),
        (["k" * MAX_KEY_CHARS], "k" * MAX_KEY_CHARS),
    ],
)
def test_valid_keys(values: list[str], key: str) -> None:
    assert parse_key(values, required=True) == key


@pytest.mark.parametrize(
    "values",
    [
        [""],
        ["   "],
        ['""'],
        ["k" * (MAX_KEY_CHARS + 1)],
        ["clé"],
        ["tab\there"],
        ["null\x00byte"],
        ["emoji-🔑"],
        [r'"bad\escape"'],
        ['"un"quoted"'],
        ["one", "two"],
    ],
)
def test_invalid_keys(values: list[str]) -> None:
    with pytest.raises(RequestError) as raised:
        parse_key(values, required=False)
    assert (raised.value.status, raised.value.code) == (400, "idempotency_key_invalid")
    assert raised.value.param == "Idempotency-Key"


def test_missing_key_is_an_error_only_where_required() -> None:
    assert parse_key([], required=False) is None
    with pytest.raises(RequestError) as raised:
        parse_key([], required=True)
    assert (raised.value.status, raised.value.code) == (400, "idempotency_key_missing")
    assert raised.value.type == "invalid_request_error"
    assert raised.value.param == "Idempotency-Key"


def test_conflict_errors() -> None:
    in_use, reused = KeyInUseError(), KeyReusedError()
    assert (in_use.status, in_use.type, in_use.code) == (
        409,
        "idempotency_error",
        "idempotency_key_in_use",
    )
    assert in_use.headers == {"Retry-After": "1"}
    assert (reused.status, reused.type, reused.code) == (
        422,
        "idempotency_error",
        "idempotency_key_reused",
    )


def test_route_policy_decorator() -> None:
    async def plain() -> None: ...

    @idempotent(required=True)
    async def strict() -> None: ...

    @idempotent(required=False)
    async def lenient() -> None: ...

    assert policy_of(plain).required is False
    assert policy_of(strict).required is True
    assert policy_of(lenient).required is False


@pytest.mark.parametrize(
    ("status", "stored"),
    [
        *[(200, True), (201, True), (400, True), (404, True), (422, True), (402, True)],
        *[(409, False), (429, False), (408, False), (500, False), (503, False), (302, False)],
    ],
)
def test_which_responses_are_stored(status: int, stored: bool) -> None:
    assert is_storable(status) is stored


def test_cache_keys_are_unambiguous() -> None:
    assert cache_key("a:b", "c") != cache_key("a", "b:c")


def test_rate_limit_decisions() -> None:
    assert retry_after_s(1) == 1
    assert retry_after_s(1_000_000) == 1
    assert retry_after_s(1_000_001) == 2
    assert retry_after_s(0) == 1
    allowed = decision_from_reply([1, 199, 0], 200)
    assert allowed == Decision(True, 200, 199)
    assert allowed.headers() == {"RateLimit-Limit": "200", "RateLimit-Remaining": "199"}
    refused = decision_from_reply([0, 0, 2_500_000], 200)
    assert (refused.allowed, refused.retry_after_s) == (False, 3)
    assert refused.headers() == {
        "RateLimit-Limit": "200",
        "RateLimit-Remaining": "0",
        "Retry-After": "3",
    }


def test_the_fingerprint_is_keyed_so_card_data_in_a_body_cannot_be_brute_forced() -> None:
    body = b'{"details": {"card_number": "4111111111111111", "cvv": "123"}}'
    plain = hashlib.sha256(body).hexdigest()
    one = fingerprint("POST", PATH, body, fingerprint_key(b"a-32-byte-or-longer-secret-value-1"))
    two = fingerprint("POST", PATH, body, fingerprint_key(b"a-32-byte-or-longer-secret-value-2"))
    assert one != two
    assert plain not in (one, two)
