"""Errors of the schemas layer."""

from __future__ import annotations


class SchemaError(Exception):
    """Base class of errors raised by :mod:`schemas`."""


class SerializationError(SchemaError):
    """A record could not be encoded, or bytes could not be decoded, with its schema."""


class UnknownSchemaError(SchemaError):
    """A message names a schema (or version) this build does not know."""
