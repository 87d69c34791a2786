"""Helpers for the requests of domain.ports in tests."""

from __future__ import annotations

from typing import Any

from domain.ports import ChargeRequest, RefundRequest


def fields_of(request: ChargeRequest | RefundRequest) -> dict[str, Any]:
    """Every field of a (slotted, frozen) request, to build an altered copy from."""
    return {name: getattr(request, name) for name in type(request).__slots__}
