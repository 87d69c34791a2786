"""The topic registry: the ONE place topic names, keys and schemas are declared.

Two names come from configuration, as in the product brief:
``KAFKA_TOPIC_PAYMENTS`` (``payments.events``) and ``KAFKA_TOPIC_WEBHOOKS``
(``webhooks.delivery``). Every other topic name is fixed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic: its name, what its key is, the record schema of its values (``""``: any)."""

    name: str
    key: str
    schema: str
    doc: str


@dataclass(frozen=True, slots=True)
class Topics:
    """All topics of the pipeline, in flow order."""

    payment_requests: TopicSpec
    payments_screened: TopicSpec
    payment_events: TopicSpec
    webhooks: TopicSpec
    refund_requests: TopicSpec
    dead_letters: TopicSpec

    def all(self) -> list[TopicSpec]:
        """Every topic, in flow order."""
        return [
            self.payment_requests,
            self.payments_screened,
            self.payment_events,
            self.webhooks,
            self.refund_requests,
            self.dead_letters,
        ]


def build_topics(
    payment_events: str = "payments.events", webhooks: str = "webhooks.delivery"
) -> Topics:
    """The registry, with the two configurable names filled in."""
    return Topics(
        payment_requests=TopicSpec(
            "payments.requests",
            "payment_id",
            "paystream.PaymentRequested",
            "Payments accepted by the ingress, before screening.",
        ),
        payments_screened=TopicSpec(
            "payments.screened",
            "payment_id",
            "paystream.PaymentScreened",
            "Payments with their fraud decision, ready for routing.",
        ),
        payment_events=TopicSpec(
            payment_events,
            "payment_id",
            "paystream.PaymentStatusChanged",
            "Public: every status change of every payment, a full snapshot, ordered per payment.",
        ),
        webhooks=TopicSpec(
            webhooks,
            "merchant_id",
            "paystream.WebhookEvent",
            "Merchant-facing events to deliver to webhook endpoints.",
        ),
        refund_requests=TopicSpec(
            "refunds.requests",
            "payment_id",
            "paystream.RefundRequested",
            "Refunds accepted by the API (amount reserved), to execute at the provider.",
        ),
        dead_letters=TopicSpec(
            "payments.deadletter",
            "the original key",
            "",
            "Messages an agent could not process: the original bytes and headers, plus"
            " dlq-agent, dlq-topic, dlq-partition, dlq-offset and dlq-error headers.",
        ),
    )
