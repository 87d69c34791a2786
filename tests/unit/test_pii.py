"""domain.pii: field-level encryption of personal data in metadata, and masking."""

from __future__ import annotations

import pytest

from domain.pii import (
    PII_KEYS,
    is_protected,
    mask_email,
    mask_phone,
    mask_pii,
    protect_pii,
    reveal_pii,
)
from domain.vault_crypto import DecryptionError, KeyRing, record_aad

RING = KeyRing("k1", {"k1": b"pii-test-secret-of-32-bytes-or-more"})
AAD = record_aad("payment", "m_1", "PAY_1", "metadata")
METADATA = {
    "order_id": "12345",
    "customer_email": "user@example.com",
    "Customer_Phone": "+91 98765 43210",
    "email": "a@b.in",
    "phone": "9876543210",
}


def test_protect_encrypts_exactly_the_pii_keys() -> None:
    assert {"customer_email", "customer_phone", "email", "phone"} == PII_KEYS
    protected = protect_pii(METADATA, RING, AAD)
    assert protected["order_id"] == "12345"
    for key in ("customer_email", "Customer_Phone", "email", "phone"):
        assert is_protected(protected[key])
        assert METADATA[key] not in protected[key]
    assert "98765" not in str(protected) and "example.com" not in str(protected)
    assert protect_pii(protected, RING, AAD) == protected  # idempotent
    assert reveal_pii(protected, RING, AAD) == METADATA


def test_protected_values_are_bound_to_record_and_key() -> None:
    protected = protect_pii(METADATA, RING, AAD)
    with pytest.raises(DecryptionError):
        reveal_pii(protected, RING, record_aad("payment", "m_1", "PAY_2", "metadata"))
    swapped = {**protected, "email": protected["customer_email"]}
    with pytest.raises(DecryptionError):
        reveal_pii(swapped, RING, AAD)


def test_old_key_still_reveals_after_rotation() -> None:
    protected = protect_pii(METADATA, RING, AAD)
    rotated = KeyRing(
        "k2",
        {"k2": b"another-pii-secret-32-bytes-long!!", "k1": b"pii-test-secret-of-32-bytes-or-more"},
    )
    assert reveal_pii(protected, rotated, AAD) == METADATA


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("user@example.com", "u***@example.com"),
        ("a@b.in", "a***@b.in"),
        ("first.last+tag@mail.example.org", "f***@mail.example.org"),
        ("not-an-email", "***"),
        ("@example.com", "***"),
        ("user@", "***"),
    ],
)
def test_mask_email(value: str, masked: str) -> None:
    assert mask_email(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("9876543210", "******3210"),
        ("+91 98765 43210", "********3210"),
        ("3210", "****"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


def test_mask_pii_masks_plain_values_and_hides_encrypted_ones() -> None:
    assert mask_pii(METADATA) == {
        "order_id": "12345",
        "customer_email": "u***@example.com",
        "Customer_Phone": "********3210",
        "email": "a***@b.in",
        "phone": "******3210",
    }
    protected = protect_pii(METADATA, RING, AAD)
    shown = mask_pii(protected)
    assert shown["customer_email"] == "[encrypted]" and shown["order_id"] == "12345"
    assert mask_pii(reveal_pii(protected, RING, AAD)) == mask_pii(METADATA)
