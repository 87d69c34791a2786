"""Latency summaries: exact percentiles over recorded samples (nearest-rank)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    """Throughput and latency of one measured run."""

    name: str
    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        """Completed operations per wall-clock second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.name:<34} {self.count:>7} ops  {self.per_second:>9.1f}/s"
            f"  p50 {self.p50_ms:>8.2f} ms  p99 {self.p99_ms:>8.2f} ms  max {self.max_ms:>8.2f} ms"
        )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(name: str, latencies_s: Sequence[float], seconds: float) -> Summary:
    """Summarise latencies (in seconds) of ``len(latencies_s)`` operations over ``seconds``."""
    ordered = sorted(latencies_s)
    return Summary(
        name,
        len(ordered),
        seconds,
        percentile(ordered, 0.50) * 1000,
        percentile(ordered, 0.99) * 1000,
        (ordered[-1] if ordered else math.nan) * 1000,
    )
