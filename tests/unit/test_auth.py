"""JWT merchant tokens: minting, verification, and every way a token must be refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any

import jwt
import pytest

from ingress.auth import (
    AuthError,
    Principal,
    authenticate,
    bearer_token,
    mint_token,
    verify_token,
)
from settings import Secret, Settings, load_settings

SETTINGS = load_settings({})  # defaults only; never the process environment


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
        "sub": "m_1",
        "merchant_id": "m_1",
        "iat": now,
        "exp": now + 600,
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _sign(claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or SETTINGS.jwt_secret.reveal(), algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _refused(token: str, settings: Settings = SETTINGS) -> AuthError:
    with pytest.raises(AuthError) as caught:
        verify_token(settings, token)
    error = caught.value
    assert error.status == 401
    assert error.type == "authentication_error"
    assert error.challenge.startswith("Bearer ")
    return error


def test_minted_token_verifies_to_its_merchant():
    token = mint_token(SETTINGS, "m_123")
    assert verify_token(SETTINGS, token) == Principal(merchant_id="m_123", admin=False)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == claims["merchant_id"] == "m_123"
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_admin_token_carries_the_admin_scope():
    assert verify_token(SETTINGS, mint_token(SETTINGS, "m_1", admin=True)).admin is True
    assert verify_token(SETTINGS, _sign(_claims(scope=["read", "admin"]))).admin is True
    assert verify_token(SETTINGS, _sign(_claims(scope="read admin"))).admin is True
    assert verify_token(SETTINGS, _sign(_claims(scope="read"))).admin is False


def test_ttl_is_honoured():
    token = mint_token(SETTINGS, "m_1", ttl_s=60)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


def test_merchant_id_falls_back_to_sub():
    token = _sign(_claims(merchant_id=None, sub="m_sub"))
    assert verify_token(SETTINGS, token).merchant_id == "m_sub"


def test_expired_token_is_refused():
    token = mint_token(SETTINGS, "m_1", ttl_s=60, now=int(time.time()) - 3600)
    assert _refused(token).code == "token_expired"


def test_forged_signature_is_refused():
    forged = _sign(_claims(), key="another-secret-that-is-at-least-32-bytes-long")
    assert _refused(forged).code == "invalid_token"


def test_tampered_payload_is_refused():
    header, _, signature = mint_token(SETTINGS, "m_1").split(".")
    tampered = f"{header}.{_b64(_claims(merchant_id='m_victim', sub='m_victim'))}.{signature}"
    assert _refused(tampered).code == "invalid_token"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str):
    unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims())}."
    assert _refused(unsigned).code == "invalid_token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithms_are_refused_even_with_the_right_key(alg: str):
    assert _refused(_sign(_claims(), algorithm=alg)).code == "invalid_token"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(_claims(aud="someone-else"), id="wrong audience"),
        pytest.param(_claims(aud=None), id="no audience"),
        pytest.param(_claims(iss="evil"), id="wrong issuer"),
        pytest.param(_claims(iss=None), id="no issuer"),
        pytest.param(_claims(exp=None), id="no exp"),
        pytest.param(_claims(exp="tomorrow"), id="exp not a number"),
        pytest.param(_claims(nbf=int(time.time()) + 3600), id="not yet valid"),
        pytest.param(_claims(merchant_id=None, sub=None), id="no merchant"),
        pytest.param(_claims(merchant_id="m_1", sub="m_2"), id="sub differs"),
        pytest.param(_claims(merchant_id="bad merchant!", sub=None), id="malformed merchant"),
        pytest.param(_claims(merchant_id=42, sub=None), id="merchant not a string"),
        pytest.param(_claims(scope={"admin": True}), id="malformed scope"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any]):
    assert _refused(_sign(claims)).code == "invalid_token"


def test_token_of_another_deployment_is_refused():
    other = dataclasses.replace(SETTINGS, jwt_audience="other-api")
    assert _refused(mint_token(other, "m_1")).code == "invalid_token"
    rotated = dataclasses.replace(SETTINGS, jwt_secret=Secret("x" * 40))
    assert _refused(mint_token(SETTINGS, "m_1"), rotated).code == "invalid_token"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000])
def test_garbage_is_refused(token: str):
    assert _refused(token).code == "invalid_token"


def test_missing_header_challenges_without_error():
    with pytest.raises(AuthError) as caught:
        bearer_token(None)
    assert caught.value.code == "missing_token"
    assert caught.value.challenge == 'Bearer realm="paystream"'


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"])
def test_malformed_authorization_header_is_refused(header: str):
    with pytest.raises(AuthError) as caught:
        bearer_token(header)
    assert caught.value.code == "invalid_authorization"
    assert 'error="invalid_token"' in caught.value.challenge


def test_authenticate_accepts_any_case_of_bearer():
    token = mint_token(SETTINGS, "m_9")
    assert authenticate(SETTINGS, f"bearer {token}").merchant_id == "m_9"
    assert authenticate(SETTINGS, f"Bearer {token}").merchant_id == "m_9"


@pytest.mark.parametrize("merchant_id", ["", "bad id", "x" * 65])
def test_mint_refuses_malformed_merchant(merchant_id: str):
    with pytest.raises(ValueError, match="merchant_id"):
        mint_token(SETTINGS, merchant_id)


def test_mint_refuses_non_positive_ttl():
    with pytest.raises(ValueError, match="ttl_s"):
        mint_token(SETTINGS, "m_1", ttl_s=0)
