"""Avro codec: schemaless fastavro bodies, schema name and version in Kafka headers.

Every ``*.avsc`` file in this folder is named ``<record>.v<N>.avsc`` and parsed once,
at import. Files are self-contained (a record embedded in another is defined inline), so a
file's version alone fixes the wire format. A message is written with the newest
version of its schema and carries
two headers, ``schema`` (the full record name) and ``schema-version``; a reader
decodes with the writer's version and resolves to the newest version it knows, so
older records stay readable after a compatible schema change (new fields need a
default).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.types import Schema

from schemas.errors import SerializationError, UnknownSchemaError

SCHEMA_HEADER = "schema"
VERSION_HEADER = "schema-version"
SCHEMA_DIR = Path(__file__).resolve().parent
_FILE = re.compile(r"^(?P<stem>[a-z0-9_]+)\.v(?P<version>\d+)\.avsc$")

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One parsed version of one record schema."""

    name: str
    version: int
    parsed: Schema


class SchemaRegistry:
    """The schemas of this build, by full name and version; parsed once."""

    def __init__(self, files: Iterable[Path]) -> None:
        raw: dict[str, dict[int, dict[str, Any]]] = {}
        for path in files:
            match = _FILE.match(path.name)
            if not match:
                raise UnknownSchemaError(f"{path.name}: expected <record>.v<N>.avsc")
            doc = json.loads(path.read_text(encoding="utf-8"))
            full = f"{doc.get('namespace', '')}.{doc['name']}".lstrip(".")
            raw.setdefault(full, {})[int(match.group("version"))] = doc
        self._versions: dict[str, dict[int, SchemaVersion]] = {}
        for name, versions in raw.items():
            for version, doc in versions.items():
                # each file is self-contained: its version alone fixes the wire format
                parsed = fastavro.parse_schema(doc, named_schemas={})
                self._versions.setdefault(name, {})[version] = SchemaVersion(name, version, parsed)

    def names(self) -> list[str]:
        """Full names of all known record schemas."""
        return sorted(self._versions)

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of ``name``."""
        try:
            versions = self._versions[name]
        except KeyError:
            raise UnknownSchemaError(f"unknown schema {name!r}") from None
        return versions[max(versions)]

    def get(self, name: str, version: int) -> SchemaVersion:
        """One exact version of ``name``."""
        try:
            return self._versions[name][version]
        except KeyError:
            raise UnknownSchemaError(f"unknown schema {name!r} version {version}") from None

    def encode(self, name: str, record: Mapping[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Encode ``record`` with the newest version of ``name``; returns body and headers."""
        schema = self.latest(name)
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, schema.parsed, dict(record))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"cannot encode {name} v{schema.version}: {exc}") from exc
        headers = [(SCHEMA_HEADER, name.encode()), (VERSION_HEADER, str(schema.version).encode())]
        return buffer.getvalue(), headers

    def decode(
        self, body: bytes, headers: Headers | Mapping[str, bytes]
    ) -> tuple[str, dict[str, Any]]:
        """Decode a message body using the writer schema its headers name."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        found = {key: value for key, value in items}
        try:
            name = bytes(found[SCHEMA_HEADER]).decode()
            version = int(bytes(found[VERSION_HEADER]).decode())
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"message lacks valid schema headers: {exc}") from exc
        writer = self.get(name, version)
        reader = self.latest(name)
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(body), writer.parsed, reader.parsed if reader is not writer else None
            )
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise SerializationError(f"cannot decode {name} v{version}: {exc}") from exc
        if not isinstance(record, dict):
            raise SerializationError(f"{name} v{version} did not decode to a record")
        return name, record


def load_registry(directory: Path = SCHEMA_DIR) -> SchemaRegistry:
    """Parse every ``*.avsc`` in ``directory``."""
    return SchemaRegistry(sorted(directory.glob("*.avsc")))


REGISTRY = load_registry()
"""The registry of this build's schemas, parsed once at import."""
