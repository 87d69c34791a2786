"""Serve the ingress: uvloop, one TCP site, and a clean stop on SIGTERM/SIGINT.

On a stop signal the listener closes first, in-flight requests get up to
``SHUTDOWN_GRACE_S`` to finish (each ends with Kafka's ack or a 503), then the
producer flushes and every client closes: well within the 30 s a supervisor waits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Final

import uvloop
from aiohttp import web

from ingress.app import create_app
from settings import Settings
from sinks.logs import configure_logging

log = logging.getLogger("paystream.ingress")

SHUTDOWN_GRACE_S: Final = 15.0


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or the process receives SIGTERM or SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,  # observe_middleware writes one structured line per request
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE_S,
    )
    await runner.setup()
    try:
        # SO_REUSEPORT: several ingress replicas can serve one port (paystream run --ingress N)
        site = web.TCPSite(runner, settings.server_host, settings.server_port, reuse_port=True)
        await site.start()
        log.info(
            "ingress listening",
            extra={"host": settings.server_host, "port": settings.server_port},
        )
        await stop.wait()
        log.info("ingress stopping")
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("ingress stopped")


def run(settings: Settings) -> int:
    """Run the ingress in this process (uvloop) until SIGTERM; returns the exit status."""
    configure_logging(settings.log_level)
    uvloop.run(serve(settings))
    return 0
