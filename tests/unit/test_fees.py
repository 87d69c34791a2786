"""Fees: integer paisa, round half up, capped, from the configured schedule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fees import fee_for, fee_paisa

SCHEDULE = {"UPI": (0, 0), "CARD": (200, 0), "WALLET": (150, 0), "NETBANKING": (0, 1_000)}


@pytest.mark.parametrize(
    ("method", "amount", "fee"),
    [
        ("UPI", 10_000, 0),
        ("CARD", 10_000, 200),  # 2% of ₹100.00
        ("CARD", 12_345, 247),  # 246.9 -> 247
        ("CARD", 25, 1),  # 0.5 -> 1 (half up)
        ("CARD", 24, 0),  # 0.48 -> 0
        ("WALLET", 10_001, 150),  # 150.015 -> 150
        ("NETBANKING", 500, 500),  # fixed ₹10 capped at the ₹5 paid
        ("NETBANKING", 100_000, 1_000),
        ("CRYPTO", 10_000, 0),  # no rule, no fee
    ],
)
def test_fee_table(method: str, amount: int, fee: int) -> None:
    assert fee_for(method, amount, SCHEDULE) == fee


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    bps=st.integers(min_value=0, max_value=10_000),
    fixed=st.integers(min_value=0, max_value=10**6),
)
def test_fee_is_an_integer_between_zero_and_the_amount(amount: int, bps: int, fixed: int) -> None:
    fee = fee_paisa(amount, bps, fixed)
    assert isinstance(fee, int)
    assert 0 <= fee <= amount
    exact_times_10000 = amount * bps
    if fee < amount:  # not capped: within half a paisa of the exact value plus fixed
        assert abs((fee - fixed) * 10_000 - exact_times_10000) <= 5_000


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        fee_paisa(-1, 0, 0)
