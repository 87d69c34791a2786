"""``python -m ingress``: serve the payments API with the settings from the environment."""

from __future__ import annotations

from ingress.server import run
from settings import load_settings

raise SystemExit(run(load_settings()))
