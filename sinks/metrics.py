"""Every Prometheus metric of paystream, declared in this one module.

Names carry their unit. Labels never carry ids, amounts, VPAs or anything card-shaped.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

payments_total = Counter(
    "payments_total",
    "Payments that reached a status, by method, status and currency.",
    ["method", "status", "currency"],
)
payment_processing_duration_seconds = Histogram(
    "payment_processing_duration_seconds",
    "Time from a payment's creation to its outcome from the provider.",
    ["method", "provider"],
    buckets=LATENCY_BUCKETS,
)
fraud_score_distribution = Histogram(
    "fraud_score_distribution",
    "Distribution of fraud scores (0..MAX_FRAUD_SCORE).",
    ["payment_method", "risk_level"],
    buckets=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
)
provider_request_duration_seconds = Histogram(
    "provider_request_duration_seconds",
    "Latency of calls to payment providers, by provider, operation and outcome.",
    ["provider", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
http_requests_total = Counter(
    "http_requests_total",
    "Ingress HTTP requests by route template, method and status code.",
    ["route", "method", "status"],
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Ingress HTTP request latency by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
kafka_messages_produced_total = Counter(
    "kafka_messages_produced_total", "Messages produced, by topic.", ["topic"]
)
sink_writes_total = Counter(
    "sink_writes_total",
    "Status events written to PostgreSQL, by result (applied, stale).",
    ["result"],
)
agent_events_total = Counter(
    "agent_events_total", "Events processed by each agent, by result.", ["agent", "result"]
)
ready_state = Gauge("ready_state", "1 when this process reports ready, else 0.", ["component"])
rate_limit_redis_errors_total = Counter(
    "rate_limit_redis_errors_total",
    "Ingress rate-limit checks that Redis could not answer (failed open or closed).",
)
idempotency_requests_total = Counter(
    "idempotency_requests_total",
    "Requests with an Idempotency-Key, by outcome (new, stored, not_stored, released, "
    "replayed, in_use, reused).",
    ["outcome"],
)
idempotency_cache_errors_total = Counter(
    "idempotency_cache_errors_total",
    "Idempotency fast-path (Redis) operations that failed; PostgreSQL answered instead.",
)
live_status_streams = Gauge("live_status_streams", "Open live status streams.", ["transport"])
