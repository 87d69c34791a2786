"""Every test here runs against the real stack: request it for each (fails if missing)."""

from __future__ import annotations

import pytest

from settings import Settings


@pytest.fixture(autouse=True)
def _needs_stack(stack: Settings) -> Settings:
    return stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # conftest hooks see every collected item: mark only this folder's
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
