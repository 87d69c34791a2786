"""``paystream worker``: run one Faust worker with every agent.

SIGTERM or SIGINT stops it cleanly: the consumer stops, in-flight events finish,
the producer is flushed and offsets of processed events are committed.
"""

from __future__ import annotations

import argparse
from typing import Any

from settings import Settings


def logging_config(level: str) -> dict[str, Any]:
    """dictConfig for the worker: JSON lines on stderr, redacted (see sinks.logs)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "sinks.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "faust": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
        },
    }


def main(settings: Settings, argv: list[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; returns the process exit code."""
    import faust

    from streams.app import create_app

    parser = argparse.ArgumentParser(prog="paystream worker")
    parser.add_argument("--metrics-port", type=int, default=None, help="Prometheus port (0: off)")
    args = parser.parse_args(argv or [])
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if settings.enable_metrics and metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")

    app = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0
