"""The OpenAPI document (ingress/openapi.py) and its page (ingress/api_docs.py).

Pure: ``create_app`` does no IO, so the real app's routes are compared with the document
without any service. Behaviour (status codes, bodies, headers) is checked against the
real stack by tests/integration/test_schemathesis.py.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from domain.errors import RequestError
from domain.lifecycle import TRANSITIONS
from domain.money import MAX_AMOUNT_PAISA, MIN_AMOUNT_PAISA
from domain.status import PaymentMethod, PaymentStatus
from domain.webhooks import EVENT_TYPES
from ingress.api_docs import anchors, markdown, render_docs
from ingress.app import create_app
from ingress.openapi import (
    DOCS_PATH,
    OPENAPI_DOCUMENT,
    OPENAPI_PATH,
    build_openapi,
    is_public,
    status_meanings,
    status_table,
)
from ingress.parsing import CLIENT_FIELDS, parse_create_payment
from ingress.payment_methods import CARD_FIELDS, TOKENIZE_FIELDS, parse_tokenize
from ingress.payment_ops import parse_refund_body
from ingress.webhooks import CREATE_FIELDS, parse_create_body
from settings import Settings, load_settings

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def document(settings: Settings) -> dict[str, Any]:
    return build_openapi(settings)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def app_routes(settings: Settings) -> dict[tuple[str, str], Any]:
    app = create_app(settings)
    return {
        (route.method, route.resource.canonical): route.handler
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    errors = [str(e) for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


@pytest.mark.parametrize("metrics", [True, False])
def test_every_route_is_documented_and_every_documented_route_exists(
    settings: Settings, metrics: bool
) -> None:
    configured = dataclasses.replace(settings, enable_metrics=metrics)
    routes = set(app_routes(configured))
    documented = set(operations(build_openapi(configured)))
    assert routes - documented == set(), "routes missing from ingress/openapi.py"
    assert documented - routes == set(), "documented operations no route serves"
    assert ("GET", "/metrics") in routes if metrics else ("GET", "/metrics") not in routes


def test_the_app_serves_the_same_document(settings: Settings, document: dict[str, Any]) -> None:
    app = create_app(settings)
    assert app[OPENAPI_DOCUMENT] == document


def test_security_matches_what_the_auth_middleware_does(
    settings: Settings, document: dict[str, Any]
) -> None:
    """A token is needed exactly on /api/ routes whose handler is not marked public."""
    handlers = app_routes(settings)
    for key, op in operations(document).items():
        needs_token = key[1].startswith("/api/") and not is_public(handlers[key])
        security = op.get("security", document["security"])
        assert bool(security) == needs_token, key
        responses = op["responses"]
        assert ("401" in responses) == needs_token, key
        if needs_token:
            assert {"429", "503"} <= set(responses), key
    assert not operations(document)[("GET", OPENAPI_PATH)]["security"]
    assert not operations(document)[("GET", DOCS_PATH)]["security"]


def test_idempotency_key_is_required_on_payment_and_refund_creation_only(
    document: dict[str, Any],
) -> None:
    required = {("POST", "/api/v1/payments"), ("POST", "/api/v1/payments/{payment_id}/refund")}
    for key, op in operations(document).items():
        params = [resolve(document, p) for p in op.get("parameters", [])]
        keys = [p for p in params if p["name"] == "Idempotency-Key"]
        if key[0] != "POST":
            assert keys == [], key
            continue
        assert len(keys) == 1, key
        assert keys[0]["required"] is (key in required), key
        assert {"400", "409", "413", "422"} <= set(op["responses"]), key


def test_every_payment_status_is_documented_with_its_docstring(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["PaymentStatus"]
    assert schema["enum"] == [status.value for status in PaymentStatus]
    meanings = status_meanings()
    assert set(meanings) == {status.value for status in PaymentStatus}
    for status in PaymentStatus:
        meaning = meanings[status.value]
        assert len(meaning) > 20, status
        assert f"| `{status.value}` | {meaning} |" in schema["description"]
        assert schema["x-status-meanings"][status.value] == meaning
    # spot check: the text is the docstring's, not a copy of it
    assert "never by charging again" in meanings["UNKNOWN"]


def test_the_status_table_follows_the_lifecycle() -> None:
    rows = {row["status"]: row for row in status_table()}
    for (status, _op, _outcome), target in TRANSITIONS.items():
        if target != status:
            assert target.value in rows[status.value]["next"]
    for status in PaymentStatus:
        assert rows[status.value]["terminal"] is status.is_terminal
        if status.is_terminal:
            assert rows[status.value]["next"] == []


def test_amounts_are_bounded_integers_from_domain_money(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    amount = schemas["PaymentCreate"]["properties"]["amount_paisa"]
    assert amount["type"] == "integer"
    assert amount["format"] == "int64"
    assert (amount["minimum"], amount["maximum"]) == (MIN_AMOUNT_PAISA, MAX_AMOUNT_PAISA)
    assert schemas["Payment"]["properties"]["amount_paisa"]["type"] == "integer"
    assert schemas["Refund"]["properties"]["amount_paisa"]["format"] == "int64"


def test_enums_come_from_the_code(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["PaymentMethodType"]["enum"] == [m.value for m in PaymentMethod]
    assert schemas["WebhookEventType"]["enum"] == list(EVENT_TYPES)


CLOSED_BODIES = [
    ("PaymentCreate", CLIENT_FIELDS, lambda body: parse_create_payment(body, "m_1")),
    ("TokenizeRequest", TOKENIZE_FIELDS, lambda body: parse_tokenize(body, date(2026, 1, 1))),
    ("WebhookEndpointCreate", CREATE_FIELDS, parse_create_body),
    ("RefundCreate", {"amount_paisa", "reason", "metadata"}, parse_refund_body),
]


@pytest.mark.parametrize(("name", "fields", "parse"), CLOSED_BODIES)
def test_closed_request_bodies_list_exactly_the_fields_the_server_accepts(
    document: dict[str, Any], name: str, fields: frozenset[str], parse: Any
) -> None:
    schema = document["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(fields)
    with pytest.raises(RequestError) as refused:
        parse({"not_a_field": 1})
    assert refused.value.code == "parameter_unknown"


def test_card_details_are_closed(document: dict[str, Any]) -> None:
    details = document["components"]["schemas"]["TokenizeRequest"]["properties"]["details"]
    assert details["additionalProperties"] is False
    assert set(details["properties"]) == set(CARD_FIELDS)


def test_the_error_shape_is_the_one_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    inner = error["properties"]["error"]
    assert error["required"] == ["error"]
    assert set(inner["required"]) == {"type", "code", "message", "param", "request_id"}
    for name in ("BadRequest", "Unauthorized", "TooManyRequests", "ServiceUnavailable"):
        response = document["components"]["responses"][name]
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
        assert "X-Request-Id" in response["headers"]
    assert "Retry-After" in document["components"]["responses"]["TooManyRequests"]["headers"]
    assert "Retry-After" in document["components"]["responses"]["ServiceUnavailable"]["headers"]


def test_every_response_declares_x_request_id(document: dict[str, Any]) -> None:
    for key, op in operations(document).items():
        for code, response in op["responses"].items():
            if code == "101":
                continue
            headers = resolve(document, response).get("headers", {})
            assert "X-Request-Id" in headers, (key, code)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        for name in ("src", "href"):
            value = values.get(name) or ""
            if re.match(r"(?i)^(https?:)?//", value):
                self.external.append(value)


def test_the_docs_page_is_self_contained_and_complete(document: dict[str, Any]) -> None:
    page = render_docs(document)
    parser = _Page()
    parser.feed(page)
    assert parser.external == []
    assert not {"script", "link", "img", "iframe"} & parser.tags
    assert set(anchors(document)) <= parser.ids
    assert {"statuses", "errors", "overview"} <= parser.ids
    for name in document["components"]["schemas"]:
        assert f"schema-{name}" in parser.ids
    for status in PaymentStatus:
        assert f"<code>{status.value}</code>" in page
    for path in document["paths"]:
        assert path in page
    assert "Idempotency-Key" in page


def test_markdown_escapes_before_formatting() -> None:
    assert markdown("a `<b>` **c**") == "<p>a <code>&lt;b&gt;</code> <strong>c</strong></p>"
    table = markdown("| h |\n| --- |\n| `x` |")
    assert "<th>h</th>" in table
    assert "<td><code>x</code></td>" in table
