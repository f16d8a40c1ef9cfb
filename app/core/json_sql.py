"""JSON documents written by the database itself, for pages of many rows.

A list page of 50 users holds about a thousand values. Read as rows, each value is converted
by the driver, by SQLAlchemy, validated by pydantic and serialised again; written as JSON by
the database (SQLite's `json_object`, PostgreSQL's `json_build_object`), a row arrives as
one string that the page only joins. These constructs write each value exactly as the API's
pydantic models serialise it, so a document equals the model's JSON (the tests compare
them for every field).
"""

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Null, case, cast, literal_column, null
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, String

from app.core.db import UTCDateTime

_KEY = re.compile(r"^[a-z_]+$")


def _compiles_as(construct: type[FunctionElement[Any]], postgresql: str, sqlite: str) -> None:
    """Render `construct` from a template per dialect; `{0}` is its compiled arguments."""

    def render(template: str) -> Callable[..., str]:
        def _render(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
            return template.format(compiler.process(element.clauses, **kw))

        return _render

    compiles(construct)(render(postgresql))
    compiles(construct, "sqlite")(render(sqlite))


class json_object(FunctionElement[str]):
    """A JSON object of alternating keys and values (`json_document` builds one)."""

    type = String()
    name = "json_object"
    inherit_cache = True


class json_timestamp(FunctionElement[str]):
    """A UTCDateTime as pydantic writes it: ISO 8601 with `Z`, microseconds only if not 0."""

    type = String()
    name = "json_timestamp"
    inherit_cache = True


class json_boolean(FunctionElement[bool]):
    """A condition as JSON `true` or `false` (SQLite has no boolean type of its own)."""

    type = Boolean()
    name = "json_boolean"
    inherit_cache = True


class json_nested(FunctionElement[str]):
    """A JSON value (or NULL) chosen by a CASE, kept JSON inside an enclosing object.

    SQLite marks the result of its JSON functions as JSON, but not a CASE that passes one on:
    `json()` marks it again. PostgreSQL's CASE keeps the json type.
    """

    type = String()
    name = "json_nested"
    inherit_cache = True


_compiles_as(json_object, "json_build_object({0})", "json_object({0})")
_compiles_as(
    json_timestamp,
    "to_char(({0}) AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {0}) = {0} "
    """THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)""",
    # Stored as naive UTC text with six digits of microseconds: 'YYYY-MM-DD HH:MM:SS.ffffff'.
    "CASE WHEN substr({0}, 20) = '.000000' THEN replace(substr({0}, 1, 19), ' ', 'T') || 'Z' "
    "ELSE replace({0}, ' ', 'T') || 'Z' END",
)
_compiles_as(json_boolean, "({0})", "json(CASE WHEN {0} THEN 'true' ELSE 'false' END)")
_compiles_as(json_nested, "({0})", "json({0})")


def json_value(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A value as the API writes it: timestamps as text, conditions as `true`/`false`;
    strings, numbers, null as they are (the enums are stored as their values)."""
    if isinstance(value.type, UTCDateTime):
        return json_timestamp(value)
    if isinstance(value.type, Boolean):
        return json_boolean(value)
    return value


def json_document(fields: Sequence[tuple[str, ColumnElement[Any]]]) -> json_object:
    """A JSON object with these keys, in this order, and their values (see `json_value`)."""
    arguments: list[ColumnElement[Any]] = []
    for key, value in fields:
        if not _KEY.match(key):
            raise ValueError(f"not a field name: {key!r}")  # keys are written into the SQL
        arguments += [literal_column(f"'{key}'"), json_value(value)]
    return json_object(*arguments)


def json_text(document: ColumnElement[Any]) -> ColumnElement[str]:
    """A document read as its text: PostgreSQL's driver would decode a json value itself."""
    return cast(document, String())


def json_document_or_null(
    missing: ColumnElement[bool], fields: Sequence[tuple[str, ColumnElement[Any]]]
) -> json_nested:
    """JSON null where `missing` holds, else the document of `fields` (a nested block)."""
    nothing: Null = null()
    return json_nested(case((missing, nothing), else_=json_document(fields)))
