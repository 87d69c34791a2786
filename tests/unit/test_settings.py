"""Settings: the spec's env names, validation that names the variable, secrets never shown."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings


def test_defaults_match_the_spec_example() -> None:
    settings = load_settings({})
    assert settings.server_port == 8080
    assert settings.kafka_topic_payments == "payments.events"
    assert settings.kafka_topic_webhooks == "webhooks.delivery"
    assert settings.max_fraud_score == 100 and settings.block_threshold == 80


def test_spec_names_are_read() -> None:
    settings = load_settings(
        {
            "SERVER_PORT": "9000",
            "SERVER_READ_TIMEOUT": "500ms",
            "DB_HOST": "db",
            "KAFKA_BROKERS": "k1:9092,k2:9092",
            "WALLET_API_ENDPOINTS": '{"paytm":"https://api.paytm.example"}',
        }
    )
    assert settings.server_port == 9000
    assert settings.server_read_timeout_s == 0.5
    assert settings.db_host == "db"
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.wallet_api_endpoints == {"paytm": "https://api.paytm.example"}


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SERVER_PORT": "eighty"}, "SERVER_PORT"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT"),
        ({"SERVER_READ_TIMEOUT": "soon"}, "SERVER_READ_TIMEOUT"),
        ({"KAFKA_BROKERS": "localhost"}, "KAFKA_BROKERS"),
        ({"WALLET_API_ENDPOINTS": "[1]"}, "WALLET_API_ENDPOINTS"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"BLOCK_THRESHOLD": "120"}, "BLOCK_THRESHOLD"),
        ({"ENABLE_METRICS": "maybe"}, "ENABLE_METRICS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


def test_secrets_are_never_printed() -> None:
    secret = "a-very-secret-jwt-key-that-is-long-enough-0123"
    settings = load_settings({"JWT_SECRET": secret, "DB_PASSWORD": "hunter2-db-password"})
    assert secret not in repr(settings) and secret not in str(settings)
    assert "hunter2-db-password" not in repr(settings)
    assert settings.jwt_secret.reveal() == secret


def test_fee_schedule_and_key_ring() -> None:
    settings = load_settings(
        {
            "PAYSTREAM_FEES": '{"CARD": {"bps": 190, "fixed_paisa": 300}}',
            "PAYSTREAM_ENCRYPTION_KEY_ID": "k2",
            "PAYSTREAM_OLD_ENCRYPTION_KEYS": '{"k1": "an-old-key-that-is-long-enough-0123456789"}',
        }
    )
    assert settings.fee_schedule["CARD"] == (190, 300)
    assert settings.fee_schedule["UPI"] == (0, 0)
    assert settings.encryption_key_id == "k2"
    assert "an-old-key" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PAYSTREAM_FEES": '{"CARD": {"bps": -1}}'}, "PAYSTREAM_FEES"),
        ({"PAYSTREAM_FEES": '{"CARD": {"percent": 2}}'}, "PAYSTREAM_FEES"),
        ({"PAYSTREAM_OLD_ENCRYPTION_KEYS": '{"k0": "short"}'}, "PAYSTREAM_OLD_ENCRYPTION_KEYS"),
        (
            {"PAYSTREAM_OLD_ENCRYPTION_KEYS": '{"k1": "' + "x" * 40 + '"}'},
            "PAYSTREAM_ENCRYPTION_KEY_ID",
        ),
    ],
)
def test_bad_fee_and_key_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)
