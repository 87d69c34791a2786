"""The one reader of environment variables.

Every process (ingress, worker, simulator, CLI, tests) builds one frozen
:class:`Settings` with :func:`load_settings` at start. Names follow the product
brief's ``.env`` example (``SERVER_PORT``, ``DB_HOST``, ``KAFKA_BROKERS``,
``JWT_SECRET`` ...); names the brief does not have are prefixed ``PAYSTREAM_``.
Values are validated once, here, with an error that names the variable.
Secrets are wrapped in :class:`Secret` so that ``repr``/``str`` never show them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final

__all__ = ["Secret", "Settings", "SettingsError", "load_settings"]

_DEV_JWT_SECRET: Final = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105 (dev default, documented)
_DEV_ENCRYPTION_KEY: Final = "dev-only-encryption-key-32bytes!"
_DEV_CALLBACK_SECRET: Final = "dev-only-provider-callback-secret-0123456789"  # noqa: S105


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Secret:
    """A string that never prints itself (``repr`` and ``str`` show ``'**********'``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value; call only where it is used, never to log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _duration_seconds(name: str, raw: str) -> float:
    """Parse a Go-style duration (``30s``, ``500ms``, ``2m``) or bare seconds."""
    match = _DURATION.match(raw)
    if not match:
        raise SettingsError(f"{name}={raw!r} is not a duration like '30s' or '500ms'")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _int(name: str, raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value} is above the maximum {maximum}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """All configuration of one paystream process; build it with :func:`load_settings`."""

    # Server (ingress)
    server_host: str = "0.0.0.0"
    server_port: int = 8080
    server_read_timeout_s: float = 30.0
    server_write_timeout_s: float = 30.0
    max_body_bytes: int = 64 * 1024
    # PostgreSQL
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_username: str = "paystream"
    db_password: Secret = field(default_factory=lambda: Secret("paystream"))
    db_database: str = "payments"
    db_ssl_mode: str = "disable"
    db_max_open_conns: int = 25
    db_max_idle_conns: int = 5
    # Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: Secret = field(default_factory=lambda: Secret(""))
    redis_db: int = 0
    # Kafka
    kafka_brokers: tuple[str, ...] = ("127.0.0.1:9092",)
    kafka_group_id: str = "payments-service"
    kafka_topic_payments: str = "payments.events"
    kafka_topic_webhooks: str = "webhooks.delivery"
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    # Security
    jwt_secret: Secret = field(default_factory=lambda: Secret(_DEV_JWT_SECRET))
    jwt_issuer: str = "paystream"
    jwt_audience: str = "paystream-api"
    encryption_key: Secret = field(default_factory=lambda: Secret(_DEV_ENCRYPTION_KEY))
    encryption_key_id: str = "k1"
    """Id of the key that encrypts new data (``ENCRYPTION_KEY`` unless rotated)."""
    old_encryption_keys: Mapping[str, Secret] = field(default_factory=dict)
    """Retired keys by id, still able to decrypt (``PAYSTREAM_OLD_ENCRYPTION_KEYS``)."""
    pci_compliance_mode: bool = True
    # Merchant API
    idempotency_ttl_s: int = 86_400
    rate_limit_per_s: int = 100
    rate_limit_burst: int = 200
    rate_limit_fail_open: bool = True
    fee_schedule: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "UPI": (0, 0),
            "CARD": (200, 0),
            "WALLET": (150, 0),
            "NETBANKING": (0, 1_000),
        }
    )
    """Per method: (basis points of the amount, fixed paisa). ``PAYSTREAM_FEES``."""
    # Payment providers
    upi_core_endpoint: str = "http://127.0.0.1:8090"
    card_gateway_api_key: Secret = field(default_factory=lambda: Secret("sandbox-card-key"))
    wallet_api_endpoints: Mapping[str, str] = field(default_factory=dict)
    provider_callback_secret: Secret = field(default_factory=lambda: Secret(_DEV_CALLBACK_SECRET))
    provider_timeout_s: float = 10.0
    # Merchant-facing payment defaults
    payment_expiry_s: int = 900
    upi_payee_vpa: str = "paystream@sandbox"
    upi_payee_name: str = "Paystream Merchant"
    # Fraud detection
    fraud_ml_api_url: str = ""
    fraud_rules_config_path: str = "./config/fraud-rules.yaml"
    max_fraud_score: int = 100
    block_threshold: int = 80
    # Monitoring
    enable_metrics: bool = True
    metrics_port: int = 9090
    jaeger_endpoint: str = ""
    log_level: str = "INFO"
    # Simulator (the sandbox payment provider service)
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8090
    simulator_latency_ms: int = 50
    # Local stack
    data_dir: Path = Path("/var/tmp/paystream/dev")  # noqa: S108 (postgres user must reach it)
    kafka_controller_port: int = 9093
    kafka_version: str = "4.1.1"
    kafka_heap: str = "768m"
    worker_web_port: int = 6066
    workers: int = 1
    ingress_replicas: int = 1

    @property
    def kafka_bootstrap(self) -> str:
        """Comma-separated broker list as clients take it."""
        return ",".join(self.kafka_brokers)

    @property
    def database_dsn(self) -> str:
        """A libpq DSN for asyncpg; contains the password, so never log it."""
        return (
            f"postgresql://{self.db_username}:{self.db_password.reveal()}"
            f"@{self.db_host}:{self.db_port}/{self.db_database}"
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"Settings({shown})"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build and validate :class:`Settings` from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    defaults = Settings()

    def text(name: str, default: str) -> str:
        return env.get(name, default).strip() or default

    def integer(name: str, default: int, **bounds: int) -> int:
        raw = env.get(name)
        return default if raw is None or raw.strip() == "" else _int(name, raw, **bounds)

    def secret(name: str, default: Secret) -> Secret:
        raw = env.get(name)
        return default if raw is None else Secret(raw)

    brokers = tuple(b.strip() for b in text("KAFKA_BROKERS", defaults.kafka_bootstrap).split(","))
    for broker in brokers:
        if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", broker):
            raise SettingsError(f"KAFKA_BROKERS has {broker!r}; expected host:port[,host:port]")

    old_keys: dict[str, Secret] = {}
    for name, value in _json_object(env, "PAYSTREAM_OLD_ENCRYPTION_KEYS").items():
        if not isinstance(value, str) or len(value.encode()) < 32:
            raise SettingsError(f"PAYSTREAM_OLD_ENCRYPTION_KEYS[{name!r}] must be >= 32 bytes")
        old_keys[name] = Secret(value)
    fees = dict(defaults.fee_schedule)
    for method, rule in _json_object(env, "PAYSTREAM_FEES").items():
        if not (
            isinstance(rule, dict)
            and set(rule) <= {"bps", "fixed_paisa"}
            and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in rule.values()
            )
        ):
            raise SettingsError(
                f'PAYSTREAM_FEES[{method!r}] must be {{"bps": int >= 0, "fixed_paisa": int >= 0}}'
            )
        fees[method] = (rule.get("bps", 0), rule.get("fixed_paisa", 0))

    wallets_raw = env.get("WALLET_API_ENDPOINTS", "").strip()
    wallets: dict[str, str] = {}
    if wallets_raw:
        try:
            parsed = json.loads(wallets_raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"WALLET_API_ENDPOINTS is not JSON: {exc.msg}") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise SettingsError('WALLET_API_ENDPOINTS must be a JSON object {"name": "url"}')
        wallets = parsed

    settings = Settings(
        server_host=text("SERVER_HOST", defaults.server_host),
        server_port=integer("SERVER_PORT", defaults.server_port, minimum=1, maximum=65535),
        server_read_timeout_s=_duration_seconds(
            "SERVER_READ_TIMEOUT", env.get("SERVER_READ_TIMEOUT", "30s")
        ),
        server_write_timeout_s=_duration_seconds(
            "SERVER_WRITE_TIMEOUT", env.get("SERVER_WRITE_TIMEOUT", "30s")
        ),
        max_body_bytes=integer("PAYSTREAM_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1024),
        db_host=text("DB_HOST", defaults.db_host),
        db_port=integer("DB_PORT", defaults.db_port, minimum=1, maximum=65535),
        db_username=text("DB_USERNAME", defaults.db_username),
        db_password=secret("DB_PASSWORD", defaults.db_password),
        db_database=text("DB_DATABASE", defaults.db_database),
        db_ssl_mode=text("DB_SSL_MODE", defaults.db_ssl_mode),
        db_max_open_conns=integer("DB_MAX_OPEN_CONNS", defaults.db_max_open_conns, minimum=1),
        db_max_idle_conns=integer("DB_MAX_IDLE_CONNS", defaults.db_max_idle_conns, minimum=0),
        redis_host=text("REDIS_HOST", defaults.redis_host),
        redis_port=integer("REDIS_PORT", defaults.redis_port, minimum=1, maximum=65535),
        redis_password=secret("REDIS_PASSWORD", defaults.redis_password),
        redis_db=integer("REDIS_DB", defaults.redis_db, minimum=0, maximum=15),
        kafka_brokers=brokers,
        kafka_group_id=text("KAFKA_GROUP_ID", defaults.kafka_group_id),
        kafka_topic_payments=text("KAFKA_TOPIC_PAYMENTS", defaults.kafka_topic_payments),
        kafka_topic_webhooks=text("KAFKA_TOPIC_WEBHOOKS", defaults.kafka_topic_webhooks),
        kafka_partitions=integer(
            "PAYSTREAM_KAFKA_PARTITIONS", defaults.kafka_partitions, minimum=1
        ),
        kafka_replication_factor=integer(
            "PAYSTREAM_KAFKA_REPLICATION_FACTOR", defaults.kafka_replication_factor, minimum=1
        ),
        jwt_secret=secret("JWT_SECRET", defaults.jwt_secret),
        jwt_issuer=text("PAYSTREAM_JWT_ISSUER", defaults.jwt_issuer),
        jwt_audience=text("PAYSTREAM_JWT_AUDIENCE", defaults.jwt_audience),
        encryption_key=secret("ENCRYPTION_KEY", defaults.encryption_key),
        encryption_key_id=text("PAYSTREAM_ENCRYPTION_KEY_ID", defaults.encryption_key_id),
        old_encryption_keys=old_keys,
        idempotency_ttl_s=integer(
            "PAYSTREAM_IDEMPOTENCY_TTL_SECONDS", defaults.idempotency_ttl_s, minimum=86_400
        ),
        rate_limit_per_s=integer(
            "PAYSTREAM_RATE_LIMIT_PER_SECOND", defaults.rate_limit_per_s, minimum=1
        ),
        rate_limit_burst=integer(
            "PAYSTREAM_RATE_LIMIT_BURST", defaults.rate_limit_burst, minimum=1
        ),
        rate_limit_fail_open=_bool(
            "PAYSTREAM_RATE_LIMIT_FAIL_OPEN", env.get("PAYSTREAM_RATE_LIMIT_FAIL_OPEN", "true")
        ),
        fee_schedule=fees,
        pci_compliance_mode=_bool("PCI_COMPLIANCE_MODE", env.get("PCI_COMPLIANCE_MODE", "true")),
        upi_core_endpoint=text("UPI_CORE_ENDPOINT", defaults.upi_core_endpoint).rstrip("/"),
        card_gateway_api_key=secret("CARD_GATEWAY_API_KEY", defaults.card_gateway_api_key),
        wallet_api_endpoints=wallets,
        provider_callback_secret=secret(
            "PAYSTREAM_PROVIDER_CALLBACK_SECRET", defaults.provider_callback_secret
        ),
        provider_timeout_s=_duration_seconds(
            "PAYSTREAM_PROVIDER_TIMEOUT", env.get("PAYSTREAM_PROVIDER_TIMEOUT", "10s")
        ),
        payment_expiry_s=integer(
            "PAYSTREAM_PAYMENT_EXPIRY_SECONDS", defaults.payment_expiry_s, minimum=60
        ),
        upi_payee_vpa=text("PAYSTREAM_UPI_PAYEE_VPA", defaults.upi_payee_vpa),
        upi_payee_name=text("PAYSTREAM_UPI_PAYEE_NAME", defaults.upi_payee_name),
        fraud_ml_api_url=text("FRAUD_ML_API_URL", defaults.fraud_ml_api_url),
        fraud_rules_config_path=text("FRAUD_RULES_CONFIG_PATH", defaults.fraud_rules_config_path),
        max_fraud_score=integer("MAX_FRAUD_SCORE", defaults.max_fraud_score, minimum=1),
        block_threshold=integer("BLOCK_THRESHOLD", defaults.block_threshold, minimum=0),
        enable_metrics=_bool("ENABLE_METRICS", env.get("ENABLE_METRICS", "true")),
        metrics_port=integer("METRICS_PORT", defaults.metrics_port, minimum=1, maximum=65535),
        jaeger_endpoint=text("JAEGER_ENDPOINT", defaults.jaeger_endpoint),
        log_level=text("PAYSTREAM_LOG_LEVEL", defaults.log_level).upper(),
        simulator_host=text("PAYSTREAM_SIMULATOR_HOST", defaults.simulator_host),
        simulator_port=integer(
            "PAYSTREAM_SIMULATOR_PORT", defaults.simulator_port, minimum=1, maximum=65535
        ),
        simulator_latency_ms=integer(
            "PAYSTREAM_SIMULATOR_LATENCY_MS", defaults.simulator_latency_ms, minimum=0
        ),
        data_dir=Path(text("PAYSTREAM_DATA_DIR", str(defaults.data_dir))).expanduser(),
        kafka_controller_port=integer(
            "PAYSTREAM_KAFKA_CONTROLLER_PORT",
            defaults.kafka_controller_port,
            minimum=1,
            maximum=65535,
        ),
        kafka_version=text("PAYSTREAM_KAFKA_VERSION", defaults.kafka_version),
        kafka_heap=text("PAYSTREAM_KAFKA_HEAP", defaults.kafka_heap),
        workers=integer("WORKERS", defaults.workers, minimum=1, maximum=32),
        ingress_replicas=integer("INGRESS", defaults.ingress_replicas, minimum=1, maximum=32),
        worker_web_port=integer(
            "PAYSTREAM_WORKER_WEB_PORT", defaults.worker_web_port, minimum=1, maximum=65535
        ),
    )
    _validate(settings)
    return settings


def _json_object(env: Mapping[str, str], name: str) -> dict[str, object]:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name} is not JSON: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise SettingsError(f"{name} must be a JSON object")
    return parsed


def _validate(settings: Settings) -> None:
    if settings.encryption_key_id in settings.old_encryption_keys:
        raise SettingsError(
            f"PAYSTREAM_ENCRYPTION_KEY_ID={settings.encryption_key_id!r} is also listed in "
            "PAYSTREAM_OLD_ENCRYPTION_KEYS"
        )
    if settings.block_threshold > settings.max_fraud_score:
        raise SettingsError(
            f"BLOCK_THRESHOLD={settings.block_threshold} exceeds "
            f"MAX_FRAUD_SCORE={settings.max_fraud_score}"
        )
    if len(settings.jwt_secret.reveal().encode()) < 32:
        raise SettingsError("JWT_SECRET must be at least 32 bytes (HS256 key strength)")
    if len(settings.encryption_key.reveal().encode()) < 32:
        raise SettingsError("ENCRYPTION_KEY must be at least 32 bytes (AES-256 key)")
    if settings.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"PAYSTREAM_LOG_LEVEL={settings.log_level!r} is not a log level")
