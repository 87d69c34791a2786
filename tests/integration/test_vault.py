"""The card vault end to end: the real app against the test stack's PostgreSQL, Redis, Kafka.

Tokenize -> list -> delete; the same card twice; other merchants; errors that never
echo the card; a canary card whose number, CVV and holder name must appear nowhere in
PostgreSQL, Redis or the logs; and a key rotation with ``paystream vault reencrypt``.
Card numbers are random per run (valid Luhn, real test BINs), so runs never collide.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from domain.cards import luhn_valid, validate_card
from domain.vault_crypto import DecryptionError, KeyRing, is_token, key_id_of
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.payment_methods import VAULT
from settings import Settings, load_settings
from sinks.vault import Vault, pan_aad
from tests.support.canary import pg_hits, redis_hits

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
RUN = secrets.token_hex(4)
MERCHANT = f"m_vault_{RUN}"
OTHER = f"m_vault_other_{RUN}"
USER = f"u_{RUN}"
TOKENIZE = "/api/v1/payment-methods/tokenize"
ERROR_KEYS = {"type", "code", "message", "param", "request_id"}


def random_pan(prefix: str, length: int = 16) -> str:
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def users(name: str) -> str:
    return f"/api/v1/users/{name}/payment-methods"


def auth(settings: Settings, merchant_id: str = MERCHANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, merchant_id)}"}


def card_body(pan: str, *, user: str = USER, cvv: str = "123", **details: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "type": "CARD",
        "details": {
            "card_number": pan,
            "expiry_month": "12",
            "expiry_year": "35",
            "cvv": cvv,
            "holder_name": "John Doe",
            **details,
        },
        "display_name": "**** **** **** 0000",
    }


async def tokenize(client: TestClient, settings: Settings, body: dict[str, Any], **kw: Any) -> Any:
    merchant = kw.pop("merchant", MERCHANT)
    headers = {**auth(settings, merchant), **kw.pop("headers", {})}
    return await client.post(TOKENIZE, json=body, headers=headers)


async def assert_error(response: Any, status: int, code: str, param: str | None) -> str:
    text = await response.text()
    assert response.status == status, text
    error = json.loads(text)["error"]
    assert set(error) == ERROR_KEYS
    assert (error["code"], error["param"]) == (code, param), error
    return text


async def test_tokenize_list_delete(client: TestClient, settings: Settings, pool: asyncpg.Pool):
    user = f"u_tld_{RUN}"
    visa, mastercard = random_pan("411111"), random_pan("555555")
    response = await tokenize(client, settings, card_body(visa, user=user))
    first = await response.json()
    assert response.status == 201, first
    assert set(first) == {"token", "type", "user_id", "card", "display_name", "created_at"}
    assert is_token(first["token"])
    assert (first["type"], first["user_id"]) == ("CARD", user)
    assert first["card"] == {
        "brand": "VISA",
        "last4": visa[-4:],
        "expiry_month": 12,
        "expiry_year": 2035,
        "issuer": "Test Bank",
    }
    assert first["display_name"] == f"Visa \u2022\u2022\u2022\u2022 {visa[-4:]}"  # not the client's
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["created_at"])

    response = await tokenize(client, settings, card_body(mastercard, user=user))
    second = await response.json()
    assert response.status == 201, second
    assert second["card"]["brand"] == "MASTERCARD" and second["card"]["issuer"] == "Test Bank"

    response = await client.get(users(user), headers=auth(settings))
    listed = await response.json()
    assert response.status == 200, listed
    assert listed == {"data": [second, first], "has_more": False}  # newest first

    response = await client.delete(
        f"/api/v1/payment-methods/{first['token']}", headers=auth(settings)
    )
    assert response.status == 200
    assert await response.json() == {"token": first["token"], "deleted": True}
    response = await client.get(users(user), headers=auth(settings))
    assert (await response.json())["data"] == [second]

    row = await pool.fetchrow("SELECT * FROM payment_methods WHERE token = $1", first["token"])
    assert row["deleted_at"] is not None
    assert row["pan_ciphertext"] is None and row["holder_name_ciphertext"] is None
    assert row["fingerprint"] is None and row["key_id"] is None
    assert (row["bin"], row["last4"]) == (visa[:6], visa[-4:])

    response = await client.delete(
        f"/api/v1/payment-methods/{first['token']}", headers=auth(settings)
    )
    await assert_error(response, 404, "resource_missing", "token")
    # deleted, the card may be stored again: a new token
    response = await tokenize(client, settings, card_body(visa, user=user))
    again = await response.json()
    assert response.status == 201 and again["token"] != first["token"]


async def test_same_card_twice_returns_the_same_token(
    client: TestClient, settings: Settings, pool: asyncpg.Pool
):
    user = f"u_twice_{RUN}"
    pan = random_pan("401288")
    response = await tokenize(client, settings, card_body(pan, user=user))
    created = await response.json()
    assert response.status == 201, created

    spaced = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    response = await tokenize(client, settings, card_body(spaced, user=user, expiry_year="2036"))
    existing = await response.json()
    assert response.status == 200, existing
    assert existing["token"] == created["token"]
    assert existing["card"]["expiry_year"] == 2036  # a reissued card: the new expiry is kept
    count = await pool.fetchval(
        "SELECT count(*) FROM payment_methods WHERE merchant_id = $1 AND user_id = $2",
        MERCHANT,
        user,
    )
    assert count == 1

    response = await tokenize(client, settings, card_body(pan, user=f"{user}_b"))
    assert response.status == 201 and (await response.json())["token"] != created["token"]
    response = await tokenize(client, settings, card_body(pan, user=user), merchant=OTHER)
    assert response.status == 201 and (await response.json())["token"] != created["token"]


async def test_concurrent_tokenizations_of_one_card_store_it_once(
    client: TestClient, settings: Settings
):
    user = f"u_race_{RUN}"
    pan = random_pan("424242")
    responses = await asyncio.gather(
        *(tokenize(client, settings, card_body(pan, user=user)) for _ in range(5))
    )
    bodies = [await r.json() for r in responses]
    assert sorted(r.status for r in responses) == [200, 200, 200, 200, 201]
    assert len({b["token"] for b in bodies}) == 1


async def test_other_merchants_see_nothing(client: TestClient, settings: Settings):
    user = f"u_foreign_{RUN}"
    response = await tokenize(client, settings, card_body(random_pan("510510"), user=user))
    token = (await response.json())["token"]

    response = await client.get(users(user), headers=auth(settings, OTHER))
    assert await response.json() == {"data": [], "has_more": False}
    response = await client.delete(
        f"/api/v1/payment-methods/{token}", headers=auth(settings, OTHER)
    )
    await assert_error(response, 404, "resource_missing", "token")
    for unknown in ("tok_" + "x" * 24, "tok_short", "PAY_1"):
        response = await client.delete(f"/api/v1/payment-methods/{unknown}", headers=auth(settings))
        await assert_error(response, 404, "resource_missing", "token")
    response = await client.get(users(user), headers=auth(settings))
    assert [m["token"] for m in (await response.json())["data"]] == [token]  # still there

    for method, path in (
        ("POST", TOKENIZE),
        ("GET", users(user)),
        ("DELETE", f"/api/v1/payment-methods/{token}"),
    ):
        response = await client.request(method, path, json={})
        assert response.status == 401


async def test_errors_never_echo_the_card(
    client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    pan = random_pan("411111")
    bad_luhn = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    cases = [
        (card_body(bad_luhn), "card_number_invalid", "details.card_number"),
        (card_body(pan, expiry_year="20"), "card_expired", "details.expiry_year"),
        (card_body(pan, cvv="12"), "cvv_invalid", "details.cvv"),
        ({**card_body(pan), "type": "UPI"}, "payment_method_type_unsupported", "type"),
        (card_body(pan, **{pan: "1"}), "parameter_unknown", "details"),
        (card_body(pan, holder_name=f"x {pan}"), "card_data_not_allowed", "details.holder_name"),
    ]
    for body, code, param in cases:
        text = await assert_error(await tokenize(client, settings, body), 400, code, param)
        assert pan not in text and bad_luhn not in text and pan[:12] not in text
    logged = "\n".join(_record_text(r) for r in caplog.records)
    assert "http request" in logged
    assert pan not in logged and bad_luhn not in logged


def _record_text(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(f"{k}={v!r}" for k, v in vars(record).items())


async def test_canary_card_is_nowhere_in_the_clear(
    client: TestClient,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    pan = random_pan("378282", 15)  # Amex: a 4-digit CVV is a rarer string than 3 digits
    cvv = "9" + "".join(secrets.choice("0123456789") for _ in range(3))
    holder = f"Canary Holder {RUN}"
    body = card_body(pan, user=f"u_canary_{RUN}", cvv=cvv, holder_name=holder)
    response = await tokenize(client, settings, body, headers={"Idempotency-Key": f"canary-{RUN}"})
    created = await response.json()
    assert response.status == 201, created
    assert created["card"]["issuer"] == "American Express"
    text = json.dumps(created)
    assert pan not in text and holder not in text and cvv not in text

    # the vault really holds the card: it opens for a provider call
    opened = await client.server.app[VAULT].reveal_card(MERCHANT, created["token"])
    assert opened is not None and (opened.pan, opened.holder_name) == (pan, holder)
    assert pan not in repr(opened) and holder not in repr(opened)

    cvv_regex = f"(^|[^0-9A-Za-z+/=_-]){cvv}($|[^0-9A-Za-z+/=_-])"
    for needle in (pan, holder):
        assert await pg_hits(pool, needle, cvv_regex) == [], needle
    # the PAN only as ciphertext: no column holds it, its first 12 or its middle digits
    assert await pg_hits(pool, pan[:12], None) == []
    assert await pg_hits(pool, pan[4:14], None) == []

    in_redis = await redis_hits(
        redis, [pan.encode(), holder.encode(), pan[:12].encode()], re.compile(cvv_regex.encode())
    )
    assert in_redis == []

    logged = "\n".join(_record_text(r) for r in caplog.records)
    assert created["token"] in logged  # the request was logged, with ids only
    assert pan not in logged and pan[:12] not in logged and holder not in logged
    assert re.search(cvv_regex, logged) is None


async def test_key_rotation_and_reencrypt(settings: Settings, pool: asyncpg.Pool):
    merchant = f"m_vault_rot_{RUN}"
    user = f"u_rot_{RUN}"
    old_id = settings.encryption_key_id
    new_id = "k2" if old_id != "k2" else "k3"
    env = {
        **os.environ,
        "ENCRYPTION_KEY": f"rotated-encryption-key-{RUN}-0123456789abcdef",
        "PAYSTREAM_ENCRYPTION_KEY_ID": new_id,
        "PAYSTREAM_OLD_ENCRYPTION_KEYS": json.dumps({old_id: settings.encryption_key.reveal()}),
    }
    rotated = load_settings(env)
    new_only = load_settings({**env, "PAYSTREAM_OLD_ENCRYPTION_KEYS": ""})
    pans = [random_pan("411111"), random_pan("601111"), random_pan("652150")]

    async def key_ids() -> dict[str, str]:
        rows = await pool.fetch(
            "SELECT token, key_id, pan_ciphertext FROM payment_methods "
            "WHERE merchant_id = $1 AND deleted_at IS NULL",
            merchant,
        )
        for row in rows:
            assert key_id_of(row["pan_ciphertext"]) == row["key_id"]
        return {r["token"]: r["key_id"] for r in rows}

    # 1. two cards under the current key
    tokens = []
    async with TestClient(TestServer(create_app(settings))) as before:
        for pan in pans[:2]:
            response = await tokenize(
                before, settings, card_body(pan, user=user), merchant=merchant
            )
            assert response.status == 201
            tokens.append((await response.json())["token"])
    assert await key_ids() == dict.fromkeys(tokens, old_id)
    old_fingerprints = dict(
        await pool.fetch(
            "SELECT token, fingerprint FROM payment_methods WHERE merchant_id = $1", merchant
        )
    )

    # 2. restarted with a new active key: old rows still open and still match
    async with TestClient(TestServer(create_app(rotated))) as after:
        vault = after.server.app[VAULT]
        for token, pan in zip(tokens, pans, strict=False):
            assert (await vault.reveal_card(merchant, token)).pan == pan
        response = await tokenize(after, rotated, card_body(pans[0], user=user), merchant=merchant)
        assert response.status == 200 and (await response.json())["token"] == tokens[0]
        response = await tokenize(after, rotated, card_body(pans[2], user=user), merchant=merchant)
        assert response.status == 201
        tokens.append((await response.json())["token"])
        assert (await vault.reveal_card(merchant, tokens[2])).pan == pans[2]
    ids = await key_ids()
    assert ids == {tokens[0]: old_id, tokens[1]: old_id, tokens[2]: new_id}

    # 3. paystream vault reencrypt (the CLI, as an operator runs it), then again: idempotent
    argv = ["vault", "reencrypt", "--merchant-id", merchant, "--batch-size", "1"]
    for expected in (
        f"re-encrypted 2 payment method(s) to key {new_id} (from {old_id}: 2)",
        f"re-encrypted 0 payment method(s) to key {new_id} (from none)",
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            *argv,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert expected in out.decode(), out.decode()
    assert await key_ids() == dict.fromkeys(tokens, new_id)
    moved = dict(
        await pool.fetch(
            "SELECT token, fingerprint FROM payment_methods WHERE merchant_id = $1", merchant
        )
    )
    assert all(moved[t] != old_fingerprints[t] for t in tokens[:2])  # recomputed, new key

    # 4. the old key retired: everything still opens, and the same card still matches
    async with TestClient(TestServer(create_app(new_only))) as retired:
        vault = retired.server.app[VAULT]
        for token, pan in zip(tokens, pans, strict=True):
            assert (await vault.reveal_card(merchant, token)).pan == pan
        response = await tokenize(
            retired, new_only, card_body(pans[1], user=user), merchant=merchant
        )
        assert response.status == 200 and (await response.json())["token"] == tokens[1]

    # ...and the rows are really under the new key: the old key alone cannot open them
    old_only = Vault(pool, KeyRing(old_id, {old_id: settings.encryption_key.reveal().encode()}))
    with pytest.raises(DecryptionError):
        await old_only.reveal_card(merchant, tokens[0])


async def test_reencrypt_counts_rows_whose_key_is_gone(settings: Settings, pool: asyncpg.Pool):
    merchant = f"m_vault_lost_{RUN}"
    lost = KeyRing("lost", {"lost": secrets.token_bytes(32)})
    card = validate_card(random_pan("555555"), "12", "35", "123", datetime.now(UTC).date())
    row, created = await Vault(pool, lost).tokenize(merchant, "u_1", card)
    assert created
    sealed = await pool.fetchval(
        "SELECT pan_ciphertext FROM payment_methods WHERE token = $1", row["token"]
    )
    assert lost.decrypt(sealed, pan_aad(merchant, row["token"])) == card.pan.encode()

    current = Vault(pool, KeyRing("k9", {"k9": secrets.token_bytes(32)}))
    report = await current.reencrypt(merchant_id=merchant)
    assert (report.reencrypted, report.failed, report.conflicts) == (0, 1, 0)
    report = await current.reencrypt(merchant_id=merchant)  # one pass, no endless retry
    assert report.failed == 1
