"""A small Server-Sent Events reader for tests (the WHATWG event-stream format)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SseEvent:
    """One dispatched event."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    """Events of one response, plus the comments and ``retry`` seen on the way."""

    content: aiohttp.StreamReader
    comments: list[str] = field(default_factory=list)
    retry_ms: int | None = None
    ended: bool = False

    async def events(self) -> AsyncIterator[SseEvent]:
        """Yield events until the server ends the response."""
        name, data, last_id = "", [], None
        while True:
            raw = await self.content.readline()
            if not raw:
                self.ended = True
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    yield SseEvent(name or "message", "\n".join(data), last_id)
                name, data = "", []
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                last_id = value
            elif key == "retry" and value.isdigit():
                self.retry_ms = int(value)
