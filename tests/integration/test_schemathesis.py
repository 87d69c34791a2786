"""Schemathesis fuzzes every operation of the OpenAPI document against the real ingress.

The app is the real one (``create_app``) on the real Kafka, PostgreSQL and Redis of the
test stack, served by aiohttp's TestServer on its own event loop in a thread, so that
schemathesis's synchronous client can call it over HTTP. Rate limits are lifted so the
fuzzing is not throttled; webhook URLs resolve through a fake public DNS (no network).

Each operation gets positive and negative cases, with a valid merchant token (sometimes
none, a malformed one or another merchant's) and a fresh Idempotency-Key on every POST.
Path parameters are sometimes real objects seeded first (a PENDING, a SUCCESS and a
FAILED payment, a refund, a card, a webhook endpoint), so the handlers' success paths
run too. Every response goes through schemathesis's checks; the test fails on ANY 5xx
or any answer the document does not describe, and reports all of them, not just the first.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.lifecycle import Operation, Outcome
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.openapi import OPENAPI_PATH, build_openapi
from ingress.webhooks import RESOLVER, HostResolver
from settings import Settings
from sinks import payments

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(400),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

RUN = secrets.token_hex(4)
MERCHANT = f"m_fuzz_{RUN}"
OTHER_MERCHANT = f"m_fuzz_other_{RUN}"
USER = f"user_{RUN}"
MAX_EXAMPLES = 70
"""Per operation that takes input; operations without input yield one case each."""
MIN_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
AUTH_CHOICES = ("merchant",) * 12 + ("none", "malformed", "other", "expired")
"""Who calls: mostly the merchant; sometimes nobody, garbage, another merchant, an old token."""


CARD_BODY = {
    "user_id": USER,
    "type": "CARD",
    "details": {
        "card_number": "4111 1111 1111 1111",
        "expiry_month": "12",
        "expiry_year": str(datetime.now(UTC).year + 3),
        "cvv": "123",
    },
}
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/payment-methods/tokenize"): CARD_BODY,
    ("POST", "/api/v1/payments"): {
        "user_id": USER,
        "amount_paisa": 10000,
        "currency": "INR",
        "payment_method": "UPI",
        "payment_details": {"vpa": "success@upi"},
        "metadata": {"order_id": "fuzz"},
    },
}


class PublicResolver(HostResolver):
    """Every host resolves to one public address (no DNS, no network); ``*.invalid`` to none."""

    async def resolve(self, host: str, port: int) -> list[str]:
        del port
        return [] if host.endswith(".invalid") else ["93.184.216.34"]


class ServerThread:
    """The app on aiohttp's TestServer, on its own event loop in a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = TestServer(app, host="127.0.0.1")
        self.base_url = ""

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self.server.start_server())
        self.base_url = str(self.server.make_url("")).rstrip("/")

    def stop(self) -> None:
        try:
            self.run(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


@dataclasses.dataclass
class Seeds:
    """Real objects of MERCHANT for path parameters."""

    pending: str
    success: str
    failed: str
    actionable: str
    refund: str
    token: str
    webhook: str


@dataclasses.dataclass
class Tally:
    """What the fuzzing did: requests by operation and status, and every failure."""

    requests: int = 0
    answered: int = 0
    statuses: collections.Counter[tuple[str, int]] = dataclasses.field(
        default_factory=collections.Counter
    )
    failures: list[str] = dataclasses.field(default_factory=list)


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limit_per_s=100000, rate_limit_burst=100000)


@pytest.fixture(scope="module")
def server(fuzz_settings: Settings) -> Iterator[ServerThread]:
    app = create_app(fuzz_settings)
    app[RESOLVER] = PublicResolver()
    answered = [0]

    async def count(request: web.Request, response: web.StreamResponse) -> None:
        del request, response
        answered[0] += 1

    app.on_response_prepare.append(count)
    running = ServerThread(app)
    running.start()
    running.answered = answered  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()


def bearer(settings: Settings, merchant_id: str = MERCHANT, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, merchant_id, **kwargs)}"}


def _post(session: requests.Session, url: str, body: Any, headers: dict[str, str]) -> Any:
    response = session.post(
        url, json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _move(settings: Settings, payment_id: str, outcome: Outcome) -> None:
    """Record a provider result for a seeded payment, as the route agent would."""
    conn = await asyncpg.connect(settings.database_dsn, timeout=10)
    try:
        await payments.transition(
            conn, payment_id, Operation.PROVIDER_RESULT, outcome, now=datetime.now(UTC)
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def seeds(server: ServerThread, settings: Settings) -> Seeds:
    headers = bearer(settings)
    base = server.base_url
    body = {
        "user_id": USER,
        "amount_paisa": 50000,
        "currency": "INR",
        "payment_method": "UPI",
        "payment_details": {"vpa": "success@upi"},
    }
    with requests.Session() as session:
        ids = [_post(session, base + "/api/v1/payments", body, headers)["payment_id"]]
        for _ in range(3):
            ids.append(_post(session, base + "/api/v1/payments", body, headers)["payment_id"])
        pending, success, failed, actionable = ids
        asyncio.run(_move(settings, success, Outcome.CAPTURED))
        asyncio.run(_move(settings, failed, Outcome.DECLINED))
        asyncio.run(_move(settings, actionable, Outcome.ACTION_REQUIRED))  # cancellable
        refund = _post(
            session, f"{base}/api/v1/payments/{success}/refund", {"amount_paisa": 100}, headers
        )
        token = _post(session, base + "/api/v1/payment-methods/tokenize", CARD_BODY, headers)
        webhook = _post(
            session,
            base + "/api/v1/webhooks",
            {"url": "https://hooks.merchant.example/paystream", "events": ["*"]},
            headers,
        )
    return Seeds(
        pending,
        success,
        failed,
        actionable,
        refund["refund_id"],
        token["token"],
        webhook["webhook_id"],
    )


def real_path_parameters(path: str, seeds: Seeds) -> list[dict[str, str]]:
    """Path parameters naming real objects for ``path`` (none if it has no such parameter)."""
    if "{payment_id}" in path:
        if path.endswith("/events"):
            return [{"payment_id": seeds.failed}]  # terminal: the stream ends at once
        live = (seeds.pending, seeds.success, seeds.failed, seeds.actionable)
        return [{"payment_id": pid} for pid in live]
    if "{refund_id}" in path:
        return [{"refund_id": seeds.refund}]
    if "{token}" in path:
        return [{"token": seeds.token}]
    if "{user_id}" in path:
        return [{"user_id": USER}]
    if "{webhook_id}" in path:
        return [{"webhook_id": seeds.webhook}]
    return []


def strategy_for(operation: Any, seeds: Seeds) -> st.SearchStrategy[Any]:
    """Positive and negative cases, some of them on real objects or with a valid body."""
    options = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        options.append(operation.as_strategy(generation_mode=mode))
        for fixed in real_path_parameters(operation.path, seeds):
            options.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    body = VALID_BODIES.get((operation.method.upper(), operation.path))
    if body is not None:  # random card numbers are almost never valid: send a real one too
        options.append(operation.as_strategy(body=body))
    return st.one_of(*options)


def auth_headers(who: str, settings: Settings) -> dict[str, str]:
    if who == "merchant":
        return bearer(settings)
    if who == "other":
        return bearer(settings, OTHER_MERCHANT)
    if who == "expired":
        return bearer(settings, now=int(time.time()) - 7200)
    if who == "malformed":
        return {"Authorization": "Bearer not-a-jwt"}
    return {}


def fuzz_operation(
    operation: Any, seeds: Seeds, server: ServerThread, settings: Settings, tally: Tally
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    session = requests.Session()

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy_for(operation, seeds), who=st.sampled_from(AUTH_CHOICES))
    def run(case: Any, who: str) -> None:
        headers = auth_headers(who, settings)
        if operation.method.upper() == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        tally.requests += 1
        try:
            response = case.call(base_url=server.base_url, session=session, headers=headers)
        except requests.RequestException as exc:
            tally.failures.append(f"{label}: no answer: {exc!r}")
            return
        tally.statuses[(label, response.status_code)] += 1
        try:
            case.validate_response(
                response, checks=CHECKS, headers=headers, transport_kwargs={"headers": headers}
            )
        except FailureGroup as group:
            tally.failures.append(f"{label} -> {response.status_code}: {group}")

    try:
        run()
    finally:
        session.close()


def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(
    server: ServerThread, seeds: Seeds, fuzz_settings: Settings
) -> None:
    schema = schemathesis.openapi.from_dict(build_openapi(fuzz_settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(op.method.upper(), op.path) for op in operations}
    assert len(documented) == len(operations) >= 20

    tally = Tally()
    started = time.monotonic()
    for operation in operations:
        fuzz_operation(operation, seeds, server, fuzz_settings, tally)
    elapsed = time.monotonic() - started

    by_operation: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for (label, status), count in tally.statuses.items():
        by_operation[label][status] += count
    summary = "\n".join(
        f"  {label}: {dict(sorted(counts.items()))}"
        for label, counts in sorted(by_operation.items())
    )
    print(f"\nschemathesis: {tally.requests} requests in {elapsed:.1f}s\n{summary}")

    assert not tally.failures, f"{len(tally.failures)} failures:\n\n" + "\n\n".join(
        tally.failures[:30]
    )
    assert tally.requests >= MIN_REQUESTS, summary
    assert sum(tally.statuses.values()) == tally.requests
    assert server.answered[0] >= tally.requests  # type: ignore[attr-defined]
    assert not [key for key in tally.statuses if key[1] >= 500]
    assert len(by_operation) == len(operations), "every operation was called"
    successes = {label for (label, status) in tally.statuses if status < 300}
    assert len(successes) >= len(operations) - 2, sorted(successes)


def test_the_reference_needs_no_token(server: ServerThread) -> None:
    document = requests.get(server.base_url + OPENAPI_PATH, timeout=10)
    assert document.status_code == 200
    assert document.json()["openapi"] == "3.1.0"
    page = requests.get(server.base_url + "/api/v1/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'id="statuses"' in page.text


BEYOND_THE_ALPHABET = [
    # str.isdigit() is true for "²", int() refuses it (was 500)
    ("GET", "/api/v1/payments?limit=%C2%B2", None, {}, 400),
    ("GET", "/api/v1/refunds?limit=%C2%B2", None, {}, 400),
    ("GET", "/api/v1/payments/{failed}/events?last_event_id=%C2%B2", None, {}, 400),
    ("GET", "/api/v1/payments/{failed}/events", None, {"Last-Event-ID": "\u00b2"}, 400),
    # valid ISO times outside years 1-9999 once in UTC (was 503: PostgreSQL refused them)
    ("GET", "/api/v1/payments?created_from=0001-01-01T00:00:00%2B14:00", None, {}, 400),
    ("GET", "/api/v1/payments?created_to=9999-12-31T23:59:59-14:00", None, {}, 400),
    # NUL in a refund id reached PostgreSQL (was 503)
    ("GET", "/api/v1/refunds?starting_after=rfnd_%00", None, {}, 400),
    ("GET", "/api/v1/refunds/rfnd_%00", None, {}, 404),
    # lone surrogate escapes: the idempotency fingerprint, then error bodies (were 500)
    ("POST", "/api/v1/payments", b'{"description": "\\ud800"}', {}, 400),
    ("POST", "/api/v1/payments", b'{"\\ud800": 1}', {}, 400),
    ("POST", "/api/v1/payments/{success}/refund", b'{"\\ud800": 1}', {}, 400),
    ("POST", "/api/v1/payments/{actionable}/cancel", b'{"\\ud800": 1}', {}, 400),
    ("POST", "/api/v1/webhooks", b'{"\\ud800": 1}', {}, 400),
    ("POST", "/api/v1/payment-methods/tokenize", b'{"\\ud800": 1}', {}, 400),
]
"""Inputs Hypothesis's default alphabet does not draw (surrogates, other scripts' digits)
that made the fuzzed handlers fail; each is now a 4xx in the one error shape."""


@pytest.mark.parametrize(("method", "path", "body", "extra", "status"), BEYOND_THE_ALPHABET)
def test_inputs_beyond_the_fuzzers_alphabet_are_client_errors(
    server: ServerThread,
    seeds: Seeds,
    settings: Settings,
    method: str,
    path: str,
    body: bytes | None,
    extra: dict[str, str],
    status: int,
) -> None:
    url = server.base_url + path.format(**dataclasses.asdict(seeds))
    headers = {**bearer(settings), "Content-Type": "application/json", **extra}
    if method == "POST":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    response = requests.request(method, url, data=body, headers=encoded, timeout=10)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert error["request_id"] == response.headers["X-Request-Id"]
