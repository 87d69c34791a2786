"""Runs the local infrastructure: Apache Kafka (KRaft), PostgreSQL and Redis.

``python -m stack up|down|status`` (and ``paystream stack ...``) start them as daemons
under ``settings.data_dir`` with logs and pid files there; see :mod:`stack.manager`.
"""

from __future__ import annotations

from stack.common import ServiceStatus
from stack.errors import StackError

__all__ = ["ServiceStatus", "StackError"]
