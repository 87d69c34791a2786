"""Field-level protection of personal data in a payment's ``metadata``. Pure.

The keys treated as personal data are :data:`PII_KEYS` (``customer_email``,
``customer_phone``, ``email``, ``phone``), matched case-insensitively. For storage,
:func:`protect_pii` replaces each such value with ``"pii1:" + envelope`` (AES-256-GCM
under the key ring's active key; the associated data is the caller's record binding
plus the key name, so a value moved to another payment or another key fails to open).
Other keys pass through untouched. :func:`reveal_pii` undoes it;
:func:`mask_pii` renders values for display (``"u***@example.com"``, ``"******3210"``).

Typical use, in the flow that stores a payment::

    aad = record_aad("payment", merchant_id, payment_id, "metadata")
    stored = protect_pii(metadata, keyring, aad)      # before PostgreSQL / Kafka
    shown = mask_pii(reveal_pii(stored, keyring, aad)) # for a view, if PII is shown at all
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from domain.vault_crypto import DecryptionError, KeyRing, record_aad

PII_KEYS: Final = frozenset({"customer_email", "customer_phone", "email", "phone"})
"""Metadata keys whose values are personal data (compared lower-cased)."""
PROTECTED_PREFIX: Final = "pii1:"
"""Marks a value sealed by :func:`protect_pii`."""
MASKED_ENCRYPTED: Final = "[encrypted]"


def is_pii_key(key: str) -> bool:
    """True if a metadata key names personal data (:data:`PII_KEYS`, any case)."""
    return key.lower() in PII_KEYS


def is_protected(value: str) -> bool:
    """True if ``value`` was sealed by :func:`protect_pii`."""
    return value.startswith(PROTECTED_PREFIX)


def _field_aad(aad: bytes, key: str) -> bytes:
    return aad + record_aad("metadata-key", key.lower())


def protect_pii(metadata: Mapping[str, str], keyring: KeyRing, aad: bytes) -> dict[str, str]:
    """A copy of ``metadata`` with every personal-data value encrypted (idempotent).

    ``aad`` binds the values to their record, e.g.
    ``record_aad("payment", merchant_id, payment_id, "metadata")``.
    """
    protected: dict[str, str] = {}
    for key, value in metadata.items():
        if is_pii_key(key) and not is_protected(value):
            sealed = keyring.encrypt(value.encode("utf-8"), _field_aad(aad, key))
            protected[key] = PROTECTED_PREFIX + sealed
        else:
            protected[key] = value
    return protected


def reveal_pii(metadata: Mapping[str, str], keyring: KeyRing, aad: bytes) -> dict[str, str]:
    """A copy of ``metadata`` with protected values decrypted (DecryptionError if one fails)."""
    revealed: dict[str, str] = {}
    for key, value in metadata.items():
        if is_pii_key(key) and is_protected(value):
            plain = keyring.decrypt(value[len(PROTECTED_PREFIX) :], _field_aad(aad, key))
            try:
                revealed[key] = plain.decode("utf-8")
            except UnicodeDecodeError:
                raise DecryptionError("a protected value is not UTF-8 text") from None
        else:
            revealed[key] = value
    return revealed


def mask_email(value: str) -> str:
    """``"user@example.com"`` -> ``"u***@example.com"``; anything else -> ``"***"``."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(value: str) -> str:
    """Every digit but the last four becomes ``*``: ``"9876543210"`` -> ``"******3210"``."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


def mask_pii(metadata: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``metadata`` fit for display: personal-data values masked.

    Email keys use :func:`mask_email`, phone keys :func:`mask_phone`; a value that is
    still encrypted shows as ``"[encrypted]"`` (call :func:`reveal_pii` first to mask
    the real value). Other keys pass through.
    """
    masked: dict[str, str] = {}
    for key, value in metadata.items():
        if not is_pii_key(key):
            masked[key] = value
        elif is_protected(value):
            masked[key] = MASKED_ENCRYPTED
        elif "email" in key.lower():
            masked[key] = mask_email(value)
        else:
            masked[key] = mask_phone(value)
    return masked
