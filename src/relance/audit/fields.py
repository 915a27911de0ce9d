"""The audit row's ``data`` column: PostgreSQL ``json``, the hashed text stored verbatim.

docs/decisions/0007-audit7-seq-key-json-data.md. ``jsonb`` parsed every appended row's text into its
binary form (and printed it back on each read); nothing queries inside the audit data on the engine's
or the auditor's paths, and the chain hashes the text, so the column keeps that text as it was written:

- writes send ``chain.compact_json`` of the (canonical) value — sorted keys, no spaces, non-ASCII as
  is: the very text ``chain.row_hash`` hashes — as a ``json`` value (``_append_copy`` sends the same
  text in its binary ``COPY``);
- reads accept the text (SQLite, or a connection that loads ``json`` as text) or the value psycopg has
  already parsed (it parses ``json``; Django only registers a text loader for ``jsonb``);
- ORM lookups inside the data (``data__has_key``, ``data__action=…``, ``data__contains``…) still work:
  on PostgreSQL they read ``data::jsonb`` (``json`` has no containment, key or equality operators). They
  are for an operator's shell and the tests; nothing on a hot path uses them.

SQLite keeps Django's ``JSONField`` column as it was (``text`` with a ``JSON_VALID`` check; a declared
type ``json`` would get NUMERIC affinity there).
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, JSONField
from django.db.models.lookups import Lookup
from psycopg.types.json import Json

from relance.audit.chain import compact_json


class AsJsonb(Func):
    """``expression::jsonb`` on PostgreSQL (the lookups' operand), the expression itself elsewhere."""

    template = "%(expressions)s"
    arity = 1

    def __init__(self, expression: Any) -> None:
        super().__init__(expression, output_field=JSONField())

    def as_postgresql(self, compiler: Any, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)::jsonb", **extra)


_ON_JSONB: dict[type[Lookup[Any]], type[Lookup[Any]]] = {}


def _on_jsonb(lookup_class: type[Lookup[Any]]) -> type[Lookup[Any]]:
    """``lookup_class`` applied to ``data::jsonb`` instead of the ``json`` column (one subclass each)."""
    found = _ON_JSONB.get(lookup_class)
    if found is None:

        def init(self: Lookup[Any], lhs: Any, rhs: Any) -> None:
            lookup_class.__init__(self, AsJsonb(lhs), rhs)

        found = _ON_JSONB[lookup_class] = type(lookup_class.__name__, (lookup_class,), {"__init__": init})
    return found


def _on_postgresql() -> bool:
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


class AuditJSONField(JSONField):
    """A ``JSONField`` stored as PostgreSQL ``json`` (text kept verbatim); Django's column elsewhere."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if not isinstance(value, str):
            return value  # None, or psycopg already parsed the ``json`` value
        # Text to parse (SQLite, or a connection loading ``json`` as text). An audit row's data is always
        # an object, so a str is never a top-level JSON string that psycopg parsed.
        return super().from_db_value(value, expression, connection)

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        return Json(value, dumps=self._dumps)

    def _dumps(self, value: Any) -> str:
        if self.encoder is None:
            return compact_json(value)
        return self.encoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(value)

    def get_lookup(self, lookup_name: str) -> Any:
        found = super().get_lookup(lookup_name)
        if found is None or not _on_postgresql():
            return found
        return _on_jsonb(found)

    def get_transform(self, name: str) -> Any:
        found = super().get_transform(name)
        if found is None or not _on_postgresql():
            return found
        return lambda lhs, *args, **kwargs: found(AsJsonb(lhs), *args, **kwargs)
