"""domain.vault_crypto: the AES-256-GCM envelope, key rotation, fingerprints, tokens."""

from __future__ import annotations

import base64

import pytest

from domain.vault_crypto import (
    NONCE_BYTES,
    TAG_BYTES,
    DecryptionError,
    KeyRing,
    KeyRingError,
    is_token,
    key_id_of,
    new_token,
    record_aad,
)

PAN = "4111111111111111"
SECRET_1 = b"first-secret-of-at-least-32-bytes!!"
SECRET_2 = b"second-secret-also-32-bytes-or-more"
AAD = record_aad("payment_method", "m_1", "tok_aaaaaaaaaaaaaaaaaaaaaaaa", "pan")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing("k1", {"k1": SECRET_1})


def raw(ciphertext: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(ciphertext))


def pack(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(data)).decode()


def test_round_trip_and_envelope_layout(ring: KeyRing) -> None:
    sealed = ring.encrypt(PAN.encode(), AAD)
    assert ring.decrypt(sealed, AAD) == PAN.encode()
    data = raw(sealed)
    assert data[0] == 1  # version
    assert data[1] == 2 and data[2:4] == b"k1"  # length-prefixed key id
    assert len(data) == 4 + NONCE_BYTES + len(PAN) + TAG_BYTES
    assert PAN.encode() not in data and PAN not in sealed
    assert key_id_of(sealed) == "k1"


def test_every_encryption_uses_a_fresh_nonce(ring: KeyRing) -> None:
    sealed = {ring.encrypt(PAN.encode(), AAD) for _ in range(50)}
    assert len(sealed) == 50
    nonces = {bytes(raw(s)[4 : 4 + NONCE_BYTES]) for s in sealed}
    assert len(nonces) == 50


@pytest.mark.parametrize(
    "other_aad",
    [
        record_aad("payment_method", "m_2", "tok_aaaaaaaaaaaaaaaaaaaaaaaa", "pan"),  # merchant
        record_aad("payment_method", "m_1", "tok_bbbbbbbbbbbbbbbbbbbbbbbb", "pan"),  # row
        record_aad("payment_method", "m_1", "tok_aaaaaaaaaaaaaaaaaaaaaaaa", "holder_name"),
        b"",
    ],
)
def test_wrong_associated_data_fails(ring: KeyRing, other_aad: bytes) -> None:
    sealed = ring.encrypt(PAN.encode(), AAD)
    with pytest.raises(DecryptionError, match="authentication"):
        ring.decrypt(sealed, other_aad)


def test_record_aad_is_unambiguous() -> None:
    assert record_aad("ab", "c") != record_aad("a", "bc")
    assert record_aad("a", "") != record_aad("a")


@pytest.mark.parametrize("offset", [4, 4 + NONCE_BYTES - 1, 4 + NONCE_BYTES, -TAG_BYTES, -1])
def test_any_flipped_bit_fails(ring: KeyRing, offset: int) -> None:
    data = raw(ring.encrypt(PAN.encode(), AAD))
    data[offset] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.decrypt(pack(data), AAD)


def test_malformed_envelopes_fail_cleanly(ring: KeyRing) -> None:
    sealed = ring.encrypt(PAN.encode(), AAD)
    data = raw(sealed)
    version = bytearray(data)
    version[0] = 2
    bad = [
        "not base64 !!",
        "",
        pack(b"\x01"),
        pack(version),
        pack(data[:20]),  # truncated
        pack(bytes([1, 0]) + bytes(40)),  # empty key id
        pack(bytes([1, 2]) + b"\xff\xfe" + bytes(40)),  # key id not ASCII
        sealed + "é",
    ]
    for ciphertext in bad:
        with pytest.raises(DecryptionError) as caught:
            ring.decrypt(ciphertext, AAD)
        assert PAN not in str(caught.value)


def test_editing_the_key_id_fails_even_when_that_key_exists() -> None:
    ring = KeyRing("k1", {"k1": SECRET_1, "k2": SECRET_2})
    data = raw(ring.encrypt(PAN.encode(), AAD))
    data[2:4] = b"k2"
    with pytest.raises(DecryptionError):
        ring.decrypt(pack(data), AAD)


def test_unknown_key_id_fails(ring: KeyRing) -> None:
    other = KeyRing("k9", {"k9": SECRET_2})
    with pytest.raises(DecryptionError, match="unknown key id"):
        ring.decrypt(other.encrypt(PAN.encode(), AAD), AAD)


def test_rotation_old_key_still_decrypts_and_reencrypt_moves_to_active() -> None:
    before = KeyRing("k1", {"k1": SECRET_1})
    old_sealed = before.encrypt(PAN.encode(), AAD)

    after = KeyRing("k2", {"k2": SECRET_2, "k1": SECRET_1})
    assert after.decrypt(old_sealed, AAD) == PAN.encode()
    assert after.needs_reencrypt(old_sealed)
    moved = after.reencrypt(old_sealed, AAD)
    assert key_id_of(moved) == "k2" and not after.needs_reencrypt(moved)
    assert after.reencrypt(moved, AAD) == moved  # already on the active key: unchanged

    retired = KeyRing("k2", {"k2": SECRET_2})  # k1 removed after re-encryption
    assert retired.decrypt(moved, AAD) == PAN.encode()
    with pytest.raises(DecryptionError):
        retired.decrypt(old_sealed, AAD)
    with pytest.raises(DecryptionError):
        before.decrypt(moved, AAD)


def test_any_secret_of_32_bytes_or_more_works() -> None:
    for secret in (b"x" * 32, b"y" * 33, bytes(range(256)) * 2):
        ring = KeyRing("k", {"k": secret})
        assert ring.decrypt(ring.encrypt(b"data", AAD), AAD) == b"data"


def test_same_secret_under_two_ids_gives_distinct_envelopes_that_do_not_cross() -> None:
    ring = KeyRing("a", {"a": SECRET_1, "b": SECRET_1})
    sealed = ring.encrypt(b"data", AAD)
    data = raw(sealed)
    data[2:3] = b"b"
    with pytest.raises(DecryptionError):
        ring.decrypt(pack(data), AAD)


@pytest.mark.parametrize(
    ("active", "keys", "message"),
    [
        ("k2", {"k1": SECRET_1}, "active key"),
        ("k1", {"k1": b"short"}, "shorter than 32"),
        ("k 1", {"k 1": SECRET_1}, "key id"),
        ("", {"": SECRET_1}, "key id"),
        ("k" * 65, {"k" * 65: SECRET_1}, "key id"),
        ("ké", {"ké": SECRET_1}, "key id"),
    ],
)
def test_bad_key_rings_are_refused(active: str, keys: dict[str, bytes], message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing(active, keys)


def test_repr_shows_ids_only() -> None:
    ring = KeyRing("k2", {"k2": SECRET_2, "k1": SECRET_1})
    assert repr(ring) == "KeyRing(active_id='k2', key_ids=['k2', 'k1'])"
    assert ring.key_ids == ("k2", "k1")


def test_fingerprint_is_stable_keyed_and_not_the_pan() -> None:
    ring = KeyRing("k1", {"k1": SECRET_1})
    same_config = KeyRing("k1", {"k1": SECRET_1})
    first = ring.fingerprint(PAN)
    assert first == ring.fingerprint(PAN) == same_config.fingerprint(PAN)  # stable
    assert first != ring.fingerprint("4012888888881881")
    assert PAN not in first and len(first) == 43  # 256 bits, URL-safe base64
    other_key = KeyRing("k1", {"k1": SECRET_2})
    assert other_key.fingerprint(PAN) != first  # keyed: another key, another fingerprint


def test_fingerprint_key_differs_from_the_encryption_key_and_is_per_key_id() -> None:
    ring = KeyRing("k2", {"k2": SECRET_2, "k1": SECRET_1})
    assert ring.fingerprint(PAN, "k1") == KeyRing("k1", {"k1": SECRET_1}).fingerprint(PAN)
    assert ring.fingerprints(PAN) == {
        "k2": ring.fingerprint(PAN),
        "k1": ring.fingerprint(PAN, "k1"),
    }
    assert ring.fingerprints(PAN, ["k1"]) == {"k1": ring.fingerprint(PAN, "k1")}
    with pytest.raises(KeyRingError):
        ring.fingerprint(PAN, "k3")


def test_token_format() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert is_token(token), token
        assert token.startswith("tok_") and len(token) == 28
    for bad in ["tok_short", "tok_" + "a" * 25, "pm_" + "a" * 24, "tok_" + "a" * 23 + "!", ""]:
        assert not is_token(bad)
