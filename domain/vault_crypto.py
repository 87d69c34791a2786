"""Vault cryptography: AES-256-GCM envelopes, a key ring for rotation, keyed fingerprints.

Pure (the ``cryptography`` package computes; it does no IO). Configuration reaches
here as bytes: ``sinks.vault.keyring_from_settings`` builds the :class:`KeyRing`.

**Envelope** (one ``str``, URL-safe base64 of)::

    version (1 byte, 0x01) | key-id length (1 byte) | key id (ASCII) | nonce (12 random bytes)
    | AES-256-GCM ciphertext + 16-byte tag

The GCM associated data is the header (version, key id) followed by the caller's
record binding (:func:`record_aad`, e.g. merchant id + token + field name), so a
ciphertext copied to another row or field, or with an edited key id, fails to decrypt.

**Keys.** Each configured secret (any length >= 32 bytes) is stretched with
HKDF-SHA256 into a 32-byte AES key (info ``paystream/vault/aes-256-gcm/v1``) and,
separately, a 32-byte fingerprint key (info ``paystream/fingerprint/v1``); the raw
secret is not kept. New data uses the active key; decryption picks the key named in
the envelope, so data under a retired key stays readable while that key is configured
(:meth:`KeyRing.needs_reencrypt` finds it; ``paystream vault reencrypt`` moves it).

**Fingerprints** are HMAC-SHA256 of the PAN under a key id's fingerprint key (URL-safe
base64). They identify "the same card" for one merchant's user without storing the PAN,
and are useless without the key (no brute force of the ~10^9 PANs of a BIN). A
fingerprint belongs to the key id it was made with, which the vault stores beside it
(the row's ``key_id``): a lookup tries every key of the ring
(:meth:`KeyRing.fingerprints`), and re-encryption recomputes the fingerprint under the
new key with the ciphertext. So rotation never loses a match inside the vault; a
fingerprint exported elsewhere would change at rotation (a dedicated, never-rotated
fingerprint secret would avoid that; we do not export them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.errors import DomainError

VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
MIN_SECRET_BYTES: Final = 32
AES_KEY_INFO: Final = b"paystream/vault/aes-256-gcm/v1"
FINGERPRINT_KEY_INFO: Final = b"paystream/fingerprint/v1"
AAD_LABEL: Final = b"paystream/vault/v1"
TOKEN_PREFIX: Final = "tok_"  # noqa: S105 (an id prefix, not a secret)
TOKEN_PATTERN: Final = re.compile(r"tok_[A-Za-z0-9_-]{24}")
"""A payment-method token: ``tok_`` + 24 URL-safe characters (144 random bits)."""
KEY_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class VaultCryptoError(DomainError):
    """Base class of the vault's cryptographic errors."""


class KeyRingError(VaultCryptoError):
    """The key ring's configuration is unusable (missing active key, short secret, bad id)."""


class DecryptionError(VaultCryptoError):
    """A ciphertext is malformed, names an unknown key, or fails authentication.

    The message never contains key material or plaintext.
    """


def derive_key(secret: bytes, info: bytes) -> bytes:
    """A 32-byte key from a configured secret by HKDF-SHA256 with the label ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def record_aad(*parts: str) -> bytes:
    """Associated data binding a ciphertext to its record: each part length-prefixed.

    E.g. ``record_aad("payment_method", merchant_id, token, "pan")``. Length prefixes
    keep ``("ab", "c")`` and ``("a", "bc")`` apart.
    """
    out = bytearray(AAD_LABEL)
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def new_token() -> str:
    """A new payment-method token: ``tok_`` + 24 URL-safe random characters (:mod:`secrets`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(18)


def is_token(value: str) -> bool:
    """True if ``value`` has the shape of a payment-method token."""
    return TOKEN_PATTERN.fullmatch(value) is not None


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes([VERSION, len(encoded)]) + encoded


def _split(ciphertext: str) -> tuple[bytes, str, bytes, bytes]:
    """(header, key id, nonce, sealed) of an envelope, or DecryptionError."""
    try:
        raw = base64.urlsafe_b64decode(ciphertext.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptionError("the ciphertext is not base64") from None
    if len(raw) < 2 or raw[0] != VERSION:
        raise DecryptionError("the ciphertext has an unknown format version")
    end = 2 + raw[1]
    if raw[1] == 0 or len(raw) < end + NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("the ciphertext is truncated")
    try:
        key_id = raw[2:end].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("the ciphertext has a malformed key id") from None
    return raw[:end], key_id, raw[end : end + NONCE_BYTES], raw[end + NONCE_BYTES :]


def key_id_of(ciphertext: str) -> str:
    """The id of the key that sealed ``ciphertext`` (DecryptionError if malformed)."""
    return _split(ciphertext)[1]


class KeyRing:
    """The active key (encrypts) and retired keys (still decrypt), by id.

    ``keys`` maps each id to its configured secret (>= 32 bytes); ``active_id`` must be
    one of them. Only HKDF-derived keys are kept, and ``repr`` shows ids only.
    """

    __slots__ = ("_active_id", "_aead", "_fingerprint_keys")

    def __init__(self, active_id: str, keys: Mapping[str, bytes]) -> None:
        if active_id not in keys:
            raise KeyRingError(f"the active key id {active_id!r} has no key")
        for key_id, secret in keys.items():
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyRingError(
                    f"key id {key_id!r} must be 1-64 ASCII letters, digits, '.', '_', ':' or '-'"
                )
            if len(secret) < MIN_SECRET_BYTES:
                raise KeyRingError(f"the key {key_id!r} is shorter than {MIN_SECRET_BYTES} bytes")
        self._active_id = active_id
        self._aead = {kid: AESGCM(derive_key(secret, AES_KEY_INFO)) for kid, secret in keys.items()}
        self._fingerprint_keys = {
            kid: derive_key(secret, FINGERPRINT_KEY_INFO) for kid, secret in keys.items()
        }

    @property
    def active_id(self) -> str:
        """The id of the key that seals new data."""
        return self._active_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, the active one first."""
        return (self._active_id, *sorted(k for k in self._aead if k != self._active_id))

    def __repr__(self) -> str:
        return f"KeyRing(active_id={self._active_id!r}, key_ids={list(self.key_ids)!r})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> str:
        """Seal ``plaintext`` under the active key, bound to ``aad``; a base64 envelope."""
        header = _header(self._active_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead[self._active_id].encrypt(nonce, plaintext, header + aad)
        return base64.urlsafe_b64encode(header + nonce + sealed).decode("ascii")

    def decrypt(self, ciphertext: str, aad: bytes) -> bytes:
        """Open an envelope with the key it names; DecryptionError if anything is wrong."""
        header, key_id, nonce, sealed = _split(ciphertext)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(f"the ciphertext is sealed with an unknown key id {key_id!r}")
        try:
            return aead.decrypt(nonce, sealed, header + aad)
        except InvalidTag:
            raise DecryptionError(
                "the ciphertext failed authentication (tampered, or bound to another record)"
            ) from None

    def needs_reencrypt(self, ciphertext: str) -> bool:
        """True if ``ciphertext`` is sealed with a key other than the active one."""
        return key_id_of(ciphertext) != self._active_id

    def reencrypt(self, ciphertext: str, aad: bytes) -> str:
        """The same plaintext sealed under the active key (returned unchanged if it is)."""
        if not self.needs_reencrypt(ciphertext):
            return ciphertext
        return self.encrypt(self.decrypt(ciphertext, aad), aad)

    def fingerprint(self, value: str, key_id: str | None = None) -> str:
        """HMAC-SHA256 of ``value`` (a PAN) under a key id's fingerprint key (default active)."""
        kid = self._active_id if key_id is None else key_id
        key = self._fingerprint_keys.get(kid)
        if key is None:
            raise KeyRingError(f"no key with id {kid!r}")
        digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def fingerprints(self, value: str, key_ids: Iterable[str] | None = None) -> dict[str, str]:
        """``value``'s fingerprint under every key id of the ring (or of ``key_ids``)."""
        return {kid: self.fingerprint(value, kid) for kid in (key_ids or self.key_ids)}
