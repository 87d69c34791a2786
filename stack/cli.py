"""``paystream stack up|down|status|clean`` (also ``python -m stack ...``).

Prints one line per service; on failure prints one line to stderr and exits 1.
``status`` exits 0 when every service is up, 3 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from settings import Settings, SettingsError, load_settings
from stack import manager
from stack.common import ServiceStatus
from stack.errors import StackError

__all__ = ["build_parser", "main_stack"]

EXIT_FAILED: Final = 1
EXIT_NOT_ALL_UP: Final = 3

_COMMANDS: Final[dict[str, Callable[[Settings], list[ServiceStatus]]]] = {
    "up": manager.up,
    "down": manager.down,
    "status": manager.status,
    "clean": manager.clean,
}


def build_parser(prog: str = "paystream stack") -> argparse.ArgumentParser:
    """The argument parser of the ``stack`` command."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run Kafka (KRaft), PostgreSQL and Redis locally under PAYSTREAM_DATA_DIR.",
    )
    parser.add_argument(
        "command",
        choices=sorted(_COMMANDS),
        help="up: start (idempotent); down: stop; status: report; clean: down + delete data",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    return parser


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("stack")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("stack: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # aiokafka logs every refused connection while the broker is still starting.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def main_stack(argv: Sequence[str] | None = None) -> int:
    """Run one stack command; returns the process exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    _configure_logging(args.quiet)
    started = time.monotonic()
    try:
        statuses = _COMMANDS[args.command](load_settings())
    except (StackError, SettingsError) as exc:
        print(f"stack {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"stack {args.command}: interrupted", file=sys.stderr)
        return 130
    for item in statuses:
        print(item.line())
    if args.command == "up":
        logging.getLogger("stack").info("up in %.1fs", time.monotonic() - started)
    if args.command == "status" and any(item.state != "up" for item in statuses):
        return EXIT_NOT_ALL_UP
    return 0
