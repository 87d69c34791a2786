"""Our fee for collecting a payment: integer paisa, from a per-method schedule.

A rule is (basis points of the amount, fixed paisa). The percentage part is rounded
half up to the nearest paisa with integer arithmetic only:
``(amount * bps + 5_000) // 10_000``; the fixed part is added; the fee is capped at
the amount (a fee never exceeds what was paid). Methods without a rule cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

BASIS_POINTS_PER_UNIT = 10_000


def fee_paisa(amount_paisa: int, bps: int, fixed_paisa: int) -> int:
    """The fee for ``amount_paisa`` under one rule (round half up, capped at the amount)."""
    if amount_paisa < 0 or bps < 0 or fixed_paisa < 0:
        raise ValueError("amounts and rates are never negative")
    percentage = (amount_paisa * bps + BASIS_POINTS_PER_UNIT // 2) // BASIS_POINTS_PER_UNIT
    return min(amount_paisa, percentage + fixed_paisa)


def fee_for(method: str, amount_paisa: int, schedule: Mapping[str, tuple[int, int]]) -> int:
    """The fee for a payment by ``method`` under ``schedule`` (0 when no rule)."""
    bps, fixed = schedule.get(method, (0, 0))
    return fee_paisa(amount_paisa, bps, fixed)
