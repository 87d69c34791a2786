"""Avro codec: schemaless fastavro bodies, schema name and version in Kafka headers.

Every ``*.avsc`` file in this folder is named ``<record>.v<N>.avsc`` and parsed once,
at import. A message is written with the newest version of its schema and carries
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


def _defined_names(node: Any, namespace: str | None = None) -> set[str]:
    """Full names of the named types a schema JSON defines (not merely references)."""
    names: set[str] = set()
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in {"record", "enum", "fixed"} and "name" in node:
            ns = node.get("namespace", namespace)
            full = node["name"] if "." in node["name"] or not ns else f"{ns}.{node['name']}"
            names.add(full)
            namespace = ns
        for value in node.values():
            names |= _defined_names(value, namespace)
    elif isinstance(node, list):
        for item in node:
            names |= _defined_names(item, namespace)
    return names


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
        latest_named: dict[str, Any] = {}
        pending = {name: max(versions) for name, versions in raw.items()}
        while pending:  # parse newest versions in dependency order
            progressed = False
            for name, version in list(pending.items()):
                try:
                    parsed = fastavro.parse_schema(raw[name][version], named_schemas=latest_named)
                except fastavro.schema.UnknownType:
                    continue
                self._versions.setdefault(name, {})[version] = SchemaVersion(name, version, parsed)
                del pending[name]
                progressed = True
            if not progressed:
                raise UnknownSchemaError(f"unresolvable schema references in {sorted(pending)}")
        for name, versions in raw.items():  # older versions, against the newest of the others
            for version, doc in versions.items():
                if version in self._versions[name]:
                    continue
                own = _defined_names(doc)
                named = {k: v for k, v in latest_named.items() if k not in own}
                parsed = fastavro.parse_schema(doc, named_schemas=named)
                self._versions[name][version] = SchemaVersion(name, version, parsed)

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
