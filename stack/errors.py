"""The one error type of the local stack: a message that fits on one line."""

from __future__ import annotations

__all__ = ["StackError"]


class StackError(RuntimeError):
    """Starting, stopping or probing a local service failed.

    The message is collapsed to a single line (newlines and runs of spaces become
    one space) so that the CLI can print it as is and exit non-zero.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self.args[0])
