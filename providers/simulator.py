"""The sandbox payment-provider simulator: a real HTTP service our adapters talk to.

Run it with ``python -m providers.simulator [--port N] [--latency-ms N] ...``; it
serves on ``settings.simulator_host:simulator_port`` with uvloop and stops cleanly
on SIGTERM/SIGINT (in-flight requests are abandoned uncharged, exit within 5 s).

Layout. :func:`create_simulator_app` builds one root application holding the shared
:class:`SimulatorState` (config, seeded random source, ledger) and the ``/health``
and ``/sim/*`` control routes. Each provider sandbox is a sub-application mounted
under its own prefix from :data:`SANDBOXES`; today ``/upi`` (UPI Core). Cards,
wallets and netbanking mount the same way, write to the same ledger under their own
``provider`` name, and so share the double-charge oracle and the knobs.

UPI Core sandbox (``/upi``), the contract in :mod:`providers.upi_core`:

* ``POST /upi/v1/collect`` ``{merchant_ref, idempotency_key, amount_paisa, currency,
  payer_vpa, note}``; 400 ``{"error": {code, message, field}}`` on a bad body.
* Deterministic payer VPAs: ``success@upi`` -> SUCCESS; ``failure@upi`` -> FAILED
  ``U30``; ``failure.<code>@upi`` -> FAILED with that code from :data:`UPI_DECLINES`
  (e.g. ``failure.zm@upi``); ``pending@upi`` -> PENDING (stays pending: the sandbox
  payer never approves); ``timeout@upi`` -> sleeps ``timeout_sleep_ms`` (past any
  sane client timeout), then charges SUCCESS. Any other valid VPA -> SUCCESS, or a
  random decline with probability ``failure_rate``, or the timeout behaviour with
  probability ``timeout_rate``. Every fresh collect first waits ``latency_ms`` plus
  up to ``latency_jitter_ms``.
* Idempotency: a collect is recorded in flight the moment it is accepted, so a
  concurrent duplicate waits for and returns the same answer, and a later duplicate
  returns the recorded answer without charging again. The same key with a different
  merchant_ref, amount, currency or VPA -> 422.
* ``drop_after_charge_rate``: with that probability a fresh collect is recorded in
  the ledger and then the connection is closed without an answer, which the client
  can only read as UNKNOWN.
* ``GET /upi/v1/status/{idempotency_key}`` -> the recorded answer, ``PENDING`` while
  the collect is still in flight, or 404 ``{"status": "NOT_FOUND"}``.

UPI Core refunds (same sandbox):

* ``POST /upi/v1/refunds`` ``{merchant_ref (our refund id), payment_ref (the original
  collect's merchant_ref), original_txn_id, idempotency_key, amount_paisa, currency,
  reason}`` answers 200 ``{status: SUCCESS|FAILED, refund_txn_id, merchant_ref,
  payment_ref, original_txn_id, idempotency_key, amount_paisa, currency, error_code,
  error_message}``; 400 on a bad body. Idempotent exactly like collects (in flight
  from acceptance, replayed afterwards; the same key with any other field -> 422).
* The sandbox is the refund oracle too. When a refund is processed (after the
  latency) it is FAILED with an ``error_code`` from :data:`UPI_REFUND_ERRORS` if
  ``ORIGINAL_NOT_FOUND`` (no collect with that ``payment_ref`` and ``txn_id``),
  ``ORIGINAL_NOT_SUCCESS`` (that collect did not succeed), ``REFUND_EXCEEDS`` (the
  processed refunds of that collect plus this one would exceed its amount; checked
  and recorded atomically, so concurrent refunds cannot over-refund either).
* Deterministic test hook: ``reason: "sandbox:fail"`` -> FAILED ``REFUND_DECLINED``
  (an otherwise valid refund the bank declines). Otherwise the knobs apply as for
  collects: ``failure_rate`` -> FAILED ``REFUND_DECLINED``, ``timeout_rate`` -> sleep
  ``timeout_sleep_ms`` before processing, ``drop_after_charge_rate`` -> recorded, then
  the connection is closed without an answer.
* ``GET /upi/v1/refunds/{idempotency_key}`` -> the recorded answer, ``PENDING`` while
  in flight, or 404 ``{"status": "NOT_FOUND"}``.

Control routes (tests and operators only): ``GET /sim/ledger`` -> every recorded
request and ``charges_per_merchant_ref`` (SUCCESS entries only: the double-charge
oracle, which must never exceed 1 per payment), ``refunds`` (every recorded refund)
and ``refunded_per_merchant_ref`` ({payment_ref: paisa refunded}, SUCCESS refunds
only: the over-refund oracle, never above the charged amount); ``POST /sim/reset`` -> empty ledger,
in-flight collects cancelled, startup config and seed restored; ``GET|POST
/sim/config`` -> read or change the knobs (partial JSON; a ``seed`` reseeds).

Signed asynchronous callbacks (provider -> our webhook receiver) belong to the next
issue. They will hang off the same state: when a collect settles (including a
``pending@upi`` the sandbox later approves), the sandbox POSTs the recorded answer
to a configured callback URL, signed with HMAC-SHA256 over the raw body using
``settings.provider_callback_secret``; the ledger remains the single source of what
was charged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import uvloop
from aiohttp import web

from settings import Settings, load_settings
from sinks.logs import configure_logging

__all__ = [
    "REFUND_FAIL_REASON",
    "SANDBOXES",
    "UPI_DECLINES",
    "UPI_REFUND_ERRORS",
    "LedgerEntry",
    "RefundEntry",
    "SimulatorConfig",
    "SimulatorState",
    "create_simulator_app",
    "create_upi_sandbox",
    "main",
]

logger = logging.getLogger("providers.simulator")  # also when run as __main__

SHUTDOWN_TIMEOUT_S: Final = 5.0
UPI_PROVIDER: Final = "upi_core"
UPI_DECLINES: Final[Mapping[str, str]] = {
    "U30": "Debit has failed",
    "ZM": "Invalid MPIN",
    "Z9": "Insufficient funds in customer account",
    "U69": "Collect request expired",
    "ZA": "Transaction declined by customer",
    "Z6": "Number of PIN tries exceeded",
    "Z8": "Per transaction limit exceeded as set by remitting member",
    "U16": "Risk threshold exceeded",
    "ZH": "Invalid virtual address",
}
"""The NPCI response codes the sandbox sends on FAILED (its vocabulary)."""
_DEFAULT_FAILURE_CODE: Final = "U30"
UPI_REFUND_ERRORS: Final[Mapping[str, str]] = {
    "ORIGINAL_NOT_FOUND": "Original transaction not found",
    "ORIGINAL_NOT_SUCCESS": "Original transaction was not successful",
    "REFUND_EXCEEDS": "Refund amount exceeds the refundable amount of the original",
    "REFUND_DECLINED": "Refund declined by the remitter bank",
}
"""The error codes the sandbox sends on a FAILED refund (its vocabulary)."""
REFUND_FAIL_REASON: Final = "sandbox:fail"
"""A refund ``reason`` that makes the sandbox decline it with ``REFUND_DECLINED``."""
_MAX_REASON_CHARS: Final = 100
_VPA: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}@[A-Za-z][A-Za-z0-9.-]{1,63}$")
_KEY: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_AMOUNT_PAISA: Final = 1_000_000_000
_MAX_NOTE_CHARS: Final = 50


# --------------------------------------------------------------------------- config


class SimulatorConfigError(ValueError):
    """A knob has a wrong type or is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The simulator's knobs. Rates are probabilities in [0, 1]; all default to 0."""

    latency_ms: int = 50
    """Fixed processing time of every fresh request."""
    latency_jitter_ms: int = 0
    """Up to this much extra, uniformly random, processing time."""
    failure_rate: float = 0.0
    """Probability that an ordinary VPA is declined (random code from UPI_DECLINES), and
    that a valid refund is declined (``REFUND_DECLINED``)."""
    timeout_rate: float = 0.0
    """Probability that an ordinary VPA behaves like ``timeout@upi``."""
    drop_after_charge_rate: float = 0.0
    """Probability that a fresh request (collect or refund) is recorded and then answered
    by a closed connection."""
    timeout_sleep_ms: int = 30_000
    """How long the timeout behaviour sleeps before charging."""
    seed: int | None = None
    """Seed of the random source (ids and rolls); ``None`` for a fresh one each start."""

    def __post_init__(self) -> None:
        for name in ("latency_ms", "latency_jitter_ms", "timeout_sleep_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SimulatorConfigError(f"{name} must be a non-negative integer (ms)")
        for name in ("failure_rate", "timeout_rate", "drop_after_charge_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise SimulatorConfigError(f"{name} must be a number between 0 and 1")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SimulatorConfigError("seed must be an integer or null")

    @classmethod
    def from_settings(cls, settings: Settings) -> SimulatorConfig:
        """The startup config: latency from settings, every rate 0."""
        return cls(latency_ms=settings.simulator_latency_ms)

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with ``changes`` (e.g. a ``POST /sim/config`` body) applied and validated."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SimulatorConfigError(f"unknown knob(s): {', '.join(unknown)}")
        return replace(self, **dict(changes))

    def as_json(self) -> dict[str, Any]:
        """The knobs as a JSON object."""
        return asdict(self)


# --------------------------------------------------------------------------- ledger


@dataclass(slots=True)
class LedgerEntry:
    """One request a sandbox processed, and the answer it gave (replayed on repeats)."""

    provider: str
    idempotency_key: str
    merchant_ref: str
    amount_paisa: int
    currency: str
    payer_vpa: str
    status: str
    txn_id: str
    recorded_at: datetime
    rrn: str | None = None
    approval_code: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    fingerprint: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def charged(self) -> bool:
        """True when money moved (the entry counts towards the double-charge oracle)."""
        return self.status == "SUCCESS"

    def answer(self) -> dict[str, Any]:
        """The provider's response body for this request."""
        body: dict[str, Any] = {
            "status": self.status,
            "txn_id": self.txn_id,
            "merchant_ref": self.merchant_ref,
            "idempotency_key": self.idempotency_key,
            "amount_paisa": self.amount_paisa,
        }
        if self.status == "SUCCESS":
            body["rrn"] = self.rrn
            body["approval_code"] = self.approval_code
        if self.status == "FAILED":
            body["error_code"] = self.error_code
            body["error_message"] = self.error_message
        return body

    def as_json(self) -> dict[str, Any]:
        """The ledger view of this entry."""
        return {
            "provider": self.provider,
            "idempotency_key": self.idempotency_key,
            "merchant_ref": self.merchant_ref,
            "amount_paisa": self.amount_paisa,
            "currency": self.currency,
            "payer_vpa": self.payer_vpa,
            "status": self.status,
            "txn_id": self.txn_id,
            "rrn": self.rrn,
            "approval_code": self.approval_code,
            "error_code": self.error_code,
            "recorded_at": self.recorded_at.isoformat(),
            "charged_at": self.recorded_at.isoformat() if self.charged else None,
        }


@dataclass(slots=True)
class RefundEntry:
    """One refund a sandbox processed, and the answer it gave (replayed on repeats)."""

    provider: str
    idempotency_key: str
    merchant_ref: str
    payment_ref: str
    original_txn_id: str
    amount_paisa: int
    currency: str
    reason: str
    status: str
    refund_txn_id: str
    recorded_at: datetime
    error_code: str | None = None
    error_message: str | None = None
    fingerprint: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def refunded(self) -> bool:
        """True when money went back (counts towards the over-refund oracle)."""
        return self.status == "SUCCESS"

    def answer(self) -> dict[str, Any]:
        """The provider's response body for this refund."""
        body: dict[str, Any] = {
            "status": self.status,
            "refund_txn_id": self.refund_txn_id,
            "merchant_ref": self.merchant_ref,
            "payment_ref": self.payment_ref,
            "original_txn_id": self.original_txn_id,
            "idempotency_key": self.idempotency_key,
            "amount_paisa": self.amount_paisa,
            "currency": self.currency,
        }
        if self.status == "FAILED":
            body["error_code"] = self.error_code
            body["error_message"] = self.error_message
        return body

    def as_json(self) -> dict[str, Any]:
        """The ledger view of this refund."""
        return {
            "provider": self.provider,
            "idempotency_key": self.idempotency_key,
            "merchant_ref": self.merchant_ref,
            "payment_ref": self.payment_ref,
            "original_txn_id": self.original_txn_id,
            "amount_paisa": self.amount_paisa,
            "currency": self.currency,
            "reason": self.reason,
            "status": self.status,
            "refund_txn_id": self.refund_txn_id,
            "error_code": self.error_code,
            "recorded_at": self.recorded_at.isoformat(),
            "refunded_at": self.recorded_at.isoformat() if self.refunded else None,
        }


@dataclass(slots=True)
class _InFlight:
    fingerprint: tuple[Any, ...]
    merchant_ref: str
    task: asyncio.Task[Any]


class SimulatorState:
    """Everything the sandboxes share: knobs, the seeded random source and the ledger."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 (a simulator, not security)
        self.entries: dict[tuple[str, str], LedgerEntry] = {}
        self.in_flight: dict[tuple[str, str], _InFlight] = {}
        self.refunds: dict[tuple[str, str], RefundEntry] = {}
        self.refunds_in_flight: dict[tuple[str, str], _InFlight] = {}

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply knob changes; a ``seed`` among them reseeds the random source."""
        self.config = self.config.updated(changes)
        if "seed" in changes:
            self.rng.seed(self.config.seed)
        return self.config

    def reset(self) -> None:
        """Forget everything: cancel in-flight requests, empty the ledger, restore the config."""
        self.cancel_in_flight()
        self.entries.clear()
        self.refunds.clear()
        self.config = self.initial_config
        self.rng.seed(self.config.seed)

    def cancel_in_flight(self) -> None:
        """Cancel requests still being processed (they are then never charged)."""
        for flight in [*self.in_flight.values(), *self.refunds_in_flight.values()]:
            flight.task.cancel()
        self.in_flight.clear()
        self.refunds_in_flight.clear()

    def refunded_paisa(self, provider: str, payment_ref: str, original_txn_id: str) -> int:
        """Paisa already refunded (SUCCESS refunds) against one original collect."""
        return sum(
            entry.amount_paisa
            for entry in self.refunds.values()
            if entry.refunded
            and (entry.provider, entry.payment_ref, entry.original_txn_id)
            == (provider, payment_ref, original_txn_id)
        )

    def ledger(self) -> dict[str, Any]:
        """The ledger view: every entry and refund, charges counted and paisa refunded
        per merchant_ref (the oracles)."""
        entries = sorted(self.entries.values(), key=lambda e: e.recorded_at)
        per_ref: dict[str, int] = {}
        for entry in entries:
            if entry.charged:
                per_ref[entry.merchant_ref] = per_ref.get(entry.merchant_ref, 0) + 1
        refunds = sorted(self.refunds.values(), key=lambda r: r.recorded_at)
        refunded: dict[str, int] = {}
        for refund in refunds:
            if refund.refunded:
                refunded[refund.payment_ref] = (
                    refunded.get(refund.payment_ref, 0) + refund.amount_paisa
                )
        return {
            "entries": [entry.as_json() for entry in entries],
            "charges_per_merchant_ref": per_ref,
            "charge_count": sum(per_ref.values()),
            "in_flight": sorted(key for _, key in self.in_flight),
            "refunds": [refund.as_json() for refund in refunds],
            "refunded_per_merchant_ref": refunded,
            "refunds_in_flight": sorted(key for _, key in self.refunds_in_flight),
        }


STATE: Final = web.AppKey("simulator_state", SimulatorState)


def _error(status: int, code: str, message: str, field_name: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "field": field_name}}, status=status
    )


class _InvalidFieldError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _InvalidFieldError("body", "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _InvalidFieldError("body", "body must be a JSON object")
    return body


# --------------------------------------------------------------------------- UPI Core


@dataclass(frozen=True, slots=True)
class _Collect:
    merchant_ref: str
    idempotency_key: str
    amount_paisa: int
    currency: str
    payer_vpa: str
    note: str

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        return (self.merchant_ref, self.amount_paisa, self.currency, self.payer_vpa)


def _text_field(
    body: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None, max_len: int = 64
) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _InvalidFieldError(name, f"{name} must be a non-empty string of at most {max_len}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _InvalidFieldError(name, f"{name} has an invalid format")
    return value


def _inr_amount(body: Mapping[str, Any]) -> int:
    """The body's ``amount_paisa`` (whole paisa, in range); the currency must be INR."""
    amount = body.get("amount_paisa")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise _InvalidFieldError("amount_paisa", "amount_paisa must be an integer number of paisa")
    if not 1 <= amount <= _MAX_AMOUNT_PAISA:
        raise _InvalidFieldError("amount_paisa", f"amount_paisa must be in 1..{_MAX_AMOUNT_PAISA}")
    if body.get("currency") != "INR":
        raise _InvalidFieldError("currency", "currency must be INR")
    return amount


def _parse_collect(body: Mapping[str, Any]) -> _Collect:
    amount = _inr_amount(body)
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > _MAX_NOTE_CHARS:
        raise _InvalidFieldError("note", f"note must be a string of at most {_MAX_NOTE_CHARS}")
    return _Collect(
        merchant_ref=_text_field(body, "merchant_ref"),
        idempotency_key=_text_field(body, "idempotency_key", _KEY, 128),
        amount_paisa=amount,
        currency="INR",
        payer_vpa=_text_field(body, "payer_vpa", _VPA, 320).lower(),
        note=note,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    delay_s: float
    status: str
    error_code: str | None
    drop: bool
    txn_id: str
    rrn: str
    approval_code: str


def _plan_collect(order: _Collect, config: SimulatorConfig, rng: random.Random) -> _Plan:
    """Decide how a fresh collect goes. Always draws the same rolls, in the same order,
    so a seed reproduces a run whatever the VPAs and knobs."""
    timeout_roll, failure_roll, drop_roll, jitter_roll = (rng.random() for _ in range(4))
    random_code = rng.choice(sorted(UPI_DECLINES))
    txn_id = f"UPC{rng.getrandbits(64):016X}"
    rrn = f"{rng.randrange(10**12):012d}"
    approval_code = f"{rng.randrange(10**6):06d}"

    latency_s = (config.latency_ms + jitter_roll * config.latency_jitter_ms) / 1000
    timeout_s = config.timeout_sleep_ms / 1000
    status, code, delay_s = "SUCCESS", None, latency_s
    local = order.payer_vpa.split("@", 1)[0]
    magic = order.payer_vpa.endswith("@upi")
    if magic and local == "success":
        pass
    elif magic and local == "failure":
        status, code = "FAILED", _DEFAULT_FAILURE_CODE
    elif magic and local.startswith("failure.") and local[8:].upper() in UPI_DECLINES:
        status, code = "FAILED", local[8:].upper()
    elif magic and local == "pending":
        status = "PENDING"
    elif magic and local == "timeout":
        delay_s = timeout_s
    else:
        if timeout_roll < config.timeout_rate:
            delay_s = timeout_s
        if failure_roll < config.failure_rate:
            status, code = "FAILED", random_code
    return _Plan(
        delay_s=delay_s,
        status=status,
        error_code=code,
        drop=drop_roll < config.drop_after_charge_rate,
        txn_id=txn_id,
        rrn=rrn,
        approval_code=approval_code,
    )


async def _process_collect(
    state: SimulatorState, key: tuple[str, str], order: _Collect, plan: _Plan
) -> LedgerEntry:
    """The provider's own processing: wait, then record the outcome in the ledger."""
    try:
        await asyncio.sleep(plan.delay_s)
        entry = LedgerEntry(
            provider=UPI_PROVIDER,
            idempotency_key=order.idempotency_key,
            merchant_ref=order.merchant_ref,
            amount_paisa=order.amount_paisa,
            currency=order.currency,
            payer_vpa=order.payer_vpa,
            status=plan.status,
            txn_id=plan.txn_id,
            recorded_at=datetime.now(UTC),
            rrn=plan.rrn if plan.status == "SUCCESS" else None,
            approval_code=plan.approval_code if plan.status == "SUCCESS" else None,
            error_code=plan.error_code,
            error_message=UPI_DECLINES.get(plan.error_code or ""),
            fingerprint=order.fingerprint,
        )
        state.entries[key] = entry
        logger.info(
            "sandbox recorded",
            extra={
                "provider": UPI_PROVIDER,
                "payment_id": order.merchant_ref,
                "idempotency_key": order.idempotency_key,
                "status": plan.status,
            },
        )
        return entry
    finally:
        _landed(state.in_flight, key)


def _conflict() -> web.Response:
    return _error(
        422,
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency_key was already used with a different merchant_ref, amount or VPA",
        "idempotency_key",
    )


async def _upi_collect(request: web.Request) -> web.StreamResponse:
    state = request.config_dict[STATE]

    def start(order: _Collect, key: tuple[str, str]) -> tuple[bool, Coroutine[Any, Any, Any]]:
        plan = _plan_collect(order, state.config, state.rng)
        return plan.drop, _process_collect(state, key, order, plan)

    return await _submit(request, _parse_collect, state.entries, state.in_flight, start, _conflict)


_Order = TypeVar("_Order", "_Collect", "_Refund")
"""A parsed idempotent request: a collect or a refund."""


async def _submit(
    request: web.Request,
    parse: Callable[[Mapping[str, Any]], _Order],
    recorded: Mapping[tuple[str, str], LedgerEntry | RefundEntry],
    in_flight: dict[tuple[str, str], _InFlight],
    start: Callable[[_Order, tuple[str, str]], tuple[bool, Coroutine[Any, Any, Any]]],
    conflict: Callable[[], web.Response],
) -> web.StreamResponse:
    """An idempotent request (collect or refund): 400 on a bad body; the recorded answer
    on a repeat; else join the request in flight with that key, or ``start`` processing
    it (``start`` plans it and returns whether to drop the answer, and the processing).
    The same key with another fingerprint is a ``conflict``."""
    try:
        order = parse(await _json_object(request))
    except _InvalidFieldError as exc:
        return _error(400, "INVALID_REQUEST", exc.message, exc.field_name)
    key = (UPI_PROVIDER, order.idempotency_key)

    entry = recorded.get(key)
    if entry is not None:
        if entry.fingerprint != order.fingerprint:
            return conflict()
        return web.json_response(entry.answer())

    flight = in_flight.get(key)
    drop = False
    if flight is None:
        drop, processing = start(order, key)
        flight = _InFlight(order.fingerprint, order.merchant_ref, asyncio.create_task(processing))
        in_flight[key] = flight
    elif flight.fingerprint != order.fingerprint:
        return conflict()
    return await _answer_when_processed(request, flight, drop=drop, key=order.idempotency_key)


def _landed(in_flight: dict[tuple[str, str], _InFlight], key: tuple[str, str]) -> None:
    """Processing of ``key`` ended: forget its flight, unless another task holds it now."""
    flight = in_flight.get(key)
    if flight is not None and flight.task is asyncio.current_task():
        del in_flight[key]


def _status(
    request: web.Request,
    recorded: Mapping[tuple[str, str], LedgerEntry | RefundEntry],
    in_flight: Mapping[tuple[str, str], _InFlight],
) -> web.Response:
    """A status inquiry: the recorded answer, PENDING while in flight, else 404 NOT_FOUND."""
    idempotency_key = request.match_info["idempotency_key"]
    key = (UPI_PROVIDER, idempotency_key)
    entry = recorded.get(key)
    if entry is not None:
        return web.json_response(entry.answer())
    flight = in_flight.get(key)
    if flight is not None:
        return web.json_response(
            {
                "status": "PENDING",
                "merchant_ref": flight.merchant_ref,
                "idempotency_key": idempotency_key,
            }
        )
    return web.json_response(
        {"status": "NOT_FOUND", "idempotency_key": idempotency_key}, status=404
    )


async def _answer_when_processed(
    request: web.Request, flight: _InFlight, *, drop: bool, key: str
) -> web.StreamResponse:
    """Wait for the provider's processing of ``flight``, then answer (or drop the socket)."""
    try:
        # Shielded: a client that hangs up does not stop the provider's processing.
        entry = await asyncio.shield(flight.task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if flight.task.cancelled() and current is not None and not current.cancelling():
            return _error(503, "SANDBOX_RESET", "the simulator was reset or is stopping")
        raise
    if drop:
        logger.info(
            "sandbox dropping connection after recording",
            extra={"provider": UPI_PROVIDER, "idempotency_key": key},
        )
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)  # never reaches the client: the socket is gone
    return web.json_response(entry.answer())


async def _upi_status(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    return _status(request, state.entries, state.in_flight)


# --------------------------------------------------------------------------- UPI Core refunds


@dataclass(frozen=True, slots=True)
class _Refund:
    merchant_ref: str
    payment_ref: str
    original_txn_id: str
    idempotency_key: str
    amount_paisa: int
    currency: str
    reason: str

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        return (
            self.merchant_ref,
            self.payment_ref,
            self.original_txn_id,
            self.amount_paisa,
            self.currency,
            self.reason,
        )


def _parse_refund(body: Mapping[str, Any]) -> _Refund:
    amount = _inr_amount(body)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > _MAX_REASON_CHARS:
        raise _InvalidFieldError(
            "reason", f"reason must be a string of at most {_MAX_REASON_CHARS}"
        )
    return _Refund(
        merchant_ref=_text_field(body, "merchant_ref"),
        payment_ref=_text_field(body, "payment_ref"),
        original_txn_id=_text_field(body, "original_txn_id"),
        idempotency_key=_text_field(body, "idempotency_key", _KEY, 128),
        amount_paisa=amount,
        currency="INR",
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class _RefundPlan:
    delay_s: float
    declined: bool
    drop: bool
    refund_txn_id: str


def _plan_refund(order: _Refund, config: SimulatorConfig, rng: random.Random) -> _RefundPlan:
    """Decide how a fresh refund goes (the oracle checks come at processing time).
    Always draws the same rolls, in the same order, so a seed reproduces a run."""
    timeout_roll, failure_roll, drop_roll, jitter_roll = (rng.random() for _ in range(4))
    refund_txn_id = f"UPR{rng.getrandbits(64):016X}"
    delay_s = (config.latency_ms + jitter_roll * config.latency_jitter_ms) / 1000
    if timeout_roll < config.timeout_rate:
        delay_s = config.timeout_sleep_ms / 1000
    return _RefundPlan(
        delay_s=delay_s,
        declined=order.reason == REFUND_FAIL_REASON or failure_roll < config.failure_rate,
        drop=drop_roll < config.drop_after_charge_rate,
        refund_txn_id=refund_txn_id,
    )


def _refund_verdict(state: SimulatorState, order: _Refund, plan: _RefundPlan) -> str | None:
    """The error code this refund fails with, or ``None`` when it is processed.

    Runs with no ``await`` between this check and recording the refund, so refunds
    processed concurrently still never exceed the original amount.
    """
    original = next(
        (
            entry
            for entry in state.entries.values()
            if entry.provider == UPI_PROVIDER
            and entry.merchant_ref == order.payment_ref
            and entry.txn_id == order.original_txn_id
        ),
        None,
    )
    if original is None:
        return "ORIGINAL_NOT_FOUND"
    if not original.charged:
        return "ORIGINAL_NOT_SUCCESS"
    already = state.refunded_paisa(UPI_PROVIDER, order.payment_ref, order.original_txn_id)
    if already + order.amount_paisa > original.amount_paisa:
        return "REFUND_EXCEEDS"
    if plan.declined:
        return "REFUND_DECLINED"
    return None


async def _process_refund(
    state: SimulatorState, key: tuple[str, str], order: _Refund, plan: _RefundPlan
) -> RefundEntry:
    """The provider's own refund processing: wait, check against the ledger, record."""
    try:
        await asyncio.sleep(plan.delay_s)
        error_code = _refund_verdict(state, order, plan)
        entry = RefundEntry(
            provider=UPI_PROVIDER,
            idempotency_key=order.idempotency_key,
            merchant_ref=order.merchant_ref,
            payment_ref=order.payment_ref,
            original_txn_id=order.original_txn_id,
            amount_paisa=order.amount_paisa,
            currency=order.currency,
            reason=order.reason,
            status="SUCCESS" if error_code is None else "FAILED",
            refund_txn_id=plan.refund_txn_id,
            recorded_at=datetime.now(UTC),
            error_code=error_code,
            error_message=UPI_REFUND_ERRORS.get(error_code or ""),
            fingerprint=order.fingerprint,
        )
        state.refunds[key] = entry
        logger.info(
            "sandbox recorded refund",
            extra={
                "provider": UPI_PROVIDER,
                "payment_id": order.payment_ref,
                "refund_id": order.merchant_ref,
                "idempotency_key": order.idempotency_key,
                "status": entry.status,
                "error_code": error_code,
            },
        )
        return entry
    finally:
        _landed(state.refunds_in_flight, key)


def _refund_conflict() -> web.Response:
    return _error(
        422,
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency_key was already used for a different refund",
        "idempotency_key",
    )


async def _upi_refund(request: web.Request) -> web.StreamResponse:
    state = request.config_dict[STATE]

    def start(order: _Refund, key: tuple[str, str]) -> tuple[bool, Coroutine[Any, Any, Any]]:
        plan = _plan_refund(order, state.config, state.rng)
        return plan.drop, _process_refund(state, key, order, plan)

    return await _submit(
        request, _parse_refund, state.refunds, state.refunds_in_flight, start, _refund_conflict
    )


async def _upi_refund_status(request: web.Request) -> web.Response:
    state = request.config_dict[STATE]
    return _status(request, state.refunds, state.refunds_in_flight)


def create_upi_sandbox() -> web.Application:
    """The UPI Core sandbox, mounted under ``/upi`` (uses the root app's state)."""
    app = web.Application()
    app.router.add_post("/v1/collect", _upi_collect)
    app.router.add_get("/v1/status/{idempotency_key}", _upi_status)
    app.router.add_post("/v1/refunds", _upi_refund)
    app.router.add_get("/v1/refunds/{idempotency_key}", _upi_refund_status)
    return app


SANDBOXES: Final[Mapping[str, Callable[[], web.Application]]] = {"/upi": create_upi_sandbox}
"""Mount prefix -> sandbox factory. Each sandbox reads the shared state via ``STATE``."""


# --------------------------------------------------------------------------- root app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ledger(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].ledger())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"status": "reset"})


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].config.as_json())


async def _post_config(request: web.Request) -> web.Response:
    try:
        changes = await _json_object(request)
        config = request.app[STATE].configure(changes)
    except _InvalidFieldError as exc:
        return _error(400, "INVALID_REQUEST", exc.message, exc.field_name)
    except SimulatorConfigError as exc:
        return _error(400, "INVALID_CONFIG", str(exc))
    return web.json_response(config.as_json())


async def _cancel_in_flight(app: web.Application) -> None:
    app[STATE].cancel_in_flight()


def create_simulator_app(config: SimulatorConfig) -> web.Application:
    """The simulator: control routes plus every sandbox from :data:`SANDBOXES`. No IO here."""
    app = web.Application()
    app[STATE] = SimulatorState(config)
    app.router.add_get("/health", _health)
    app.router.add_get("/sim/ledger", _ledger)
    app.router.add_post("/sim/reset", _reset)
    app.router.add_get("/sim/config", _get_config)
    app.router.add_post("/sim/config", _post_config)
    for prefix, factory in SANDBOXES.items():
        app.add_subapp(prefix, factory())
    app.on_shutdown.append(_cancel_in_flight)
    return app


# --------------------------------------------------------------------------- process


def _parser(settings: Settings) -> argparse.ArgumentParser:
    defaults = SimulatorConfig.from_settings(settings)
    parser = argparse.ArgumentParser(
        prog="python -m providers.simulator", description="Sandbox payment-provider simulator."
    )
    parser.add_argument("--host", default=settings.simulator_host)
    parser.add_argument("--port", type=int, default=settings.simulator_port, help="0 = any free")
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument("--latency-jitter-ms", type=int, default=defaults.latency_jitter_ms)
    parser.add_argument("--failure-rate", type=float, default=defaults.failure_rate)
    parser.add_argument("--timeout-rate", type=float, default=defaults.timeout_rate)
    parser.add_argument(
        "--drop-after-charge-rate", type=float, default=defaults.drop_after_charge_rate
    )
    parser.add_argument("--timeout-sleep-ms", type=int, default=defaults.timeout_sleep_ms)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser


async def _serve(config: SimulatorConfig, host: str, port: int) -> None:
    runner = web.AppRunner(create_simulator_app(config), shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logger.info(
            "simulator listening",
            extra={"host": host, "port": bound_port, "sandboxes": ",".join(SANDBOXES)},
        )
        await stop.wait()
        logger.info("simulator stopping")
    finally:
        await runner.cleanup()


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM/SIGINT; returns the process exit code."""
    parser = _parser(settings)
    args = parser.parse_args(argv)
    configure_logging(settings.log_level)
    try:
        config = SimulatorConfig(
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            failure_rate=args.failure_rate,
            timeout_rate=args.timeout_rate,
            drop_after_charge_rate=args.drop_after_charge_rate,
            timeout_sleep_ms=args.timeout_sleep_ms,
            seed=args.seed,
        )
    except SimulatorConfigError as exc:
        parser.error(str(exc))
    try:
        uvloop.run(_serve(config, args.host, args.port))
    except OSError as exc:
        logger.error("simulator could not serve", extra={"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(load_settings(), sys.argv[1:]))
