"""``paystream``: one command line for every process and chore of the project.

Subcommands import their module only when run, so a missing piece fails alone
(with a one-line error and exit status 2), and ``paystream token`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

from settings import Settings, SettingsError, load_settings

# subcommand -> (module, function, whether it takes the remaining argv, help)
_DELEGATES: dict[str, tuple[str, str, bool, str]] = {
    "worker": ("streams.worker", "main", True, "run the stream-processing worker"),
    "simulator": ("providers.simulator", "main", True, "run the sandbox payment provider"),
    "db-migrate": ("sinks.migrate", "main", False, "apply pending PostgreSQL migrations"),
    "db-seed": ("sinks.seed", "main", False, "load sample merchants and payments"),
    "topics": ("streams.topics_admin", "main", False, "create missing Kafka topics"),
    "run": ("streams.runner", "main", True, "run the whole pipeline locally"),
    "tail": ("streams.tail", "main", True, "print a topic's records as JSON lines"),
    "vault": ("sinks.vault", "main", True, "card vault chores: reencrypt"),
}


class _UnavailableError(Exception):
    """A subcommand's module or function does not exist (yet)."""


def _load(module_name: str, function: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise _UnavailableError(f"module {module_name} does not exist yet") from None
        raise
    target = getattr(module, function, None)
    if not callable(target):
        raise _UnavailableError(f"{module_name}.{function} does not exist yet")
    return target  # type: ignore[no-any-return]


def _exit_status(result: object) -> int:
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    if result is None:
        return 0
    return result if isinstance(result, int) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paystream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = sub.add_parser("token", help="print a merchant API token (JWT)")
    token.add_argument("--merchant-id", required=True, help="the merchant the token is for")
    token.add_argument("--admin", action="store_true", help="add the admin scope")
    token.add_argument("--ttl", type=int, default=3600, metavar="S", help="lifetime in seconds")

    sub.add_parser("ingress", help="serve the payments HTTP API")

    stack = sub.add_parser("stack", help="run local Kafka, PostgreSQL and Redis")
    stack.add_argument("action", choices=["up", "down", "status", "clean"])
    stack.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    for name, (_, _, _, help_text) in _DELEGATES.items():
        # a delegate parses its own options (see main: parse_known_args)
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from ingress.auth import mint_token

    try:
        print(mint_token(settings, args.merchant_id, admin=args.admin, ttl_s=args.ttl))
    except ValueError as exc:
        print(f"paystream token: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``paystream`` subcommand; returns the process exit status."""
    parser = _parser()
    # options meant for a delegate (``worker --metrics-port 0``) pass through untouched
    args, passthrough = parser.parse_known_args(argv)
    command: str = args.command
    if passthrough and not _DELEGATES.get(command, ("", "", False, ""))[2]:
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    try:
        if command == "stack":
            main_stack = _load("stack.cli", "main_stack")
            return _exit_status(main_stack([args.action, *args.extra]))
        settings = load_settings()
        if command == "token":
            return _token(settings, args)
        if command == "ingress":
            return _exit_status(_load("ingress.server", "run")(settings))
        module_name, function, takes_argv, _ = _DELEGATES[command]
        target = _load(module_name, function)
        extra = list(passthrough) if takes_argv else []
        call_args: list[Any] = [settings, extra] if takes_argv else [settings]
        return _exit_status(target(*call_args))
    except _UnavailableError as exc:
        print(f"paystream {command}: not available: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"paystream {command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
