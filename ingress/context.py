"""Typed keys of what the app factory puts on the aiohttp application and requests."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ingress.auth import Principal
from ingress.errors import request_key
from ingress.producer import PaymentProducer
from ingress.store import PaymentStore
from schemas.topics import Topics
from settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
TOPICS: Final = web.AppKey("topics", Topics)
PRODUCER: Final = web.AppKey("producer", PaymentProducer)
STORE: Final = web.AppKey("store", PaymentStore)
PRINCIPAL: Final = request_key("principal", Principal)
"""Key of the authenticated :class:`ingress.auth.Principal` in a request's dict."""
