"""SQL written once, for the few statements on every run's path.

The ORM builds a query anew each time it runs one: 0.2-0.8 ms of CPU (filters, the
compiler, model instances) for a statement the database answers in microseconds, and a run
makes about twenty. The statements on every run's path (its record's inserts, claiming and
finishing it, reading what it needs) are written as SQL over the models' tables instead.
The models' own fields prepare the parameters and convert the results, so that these
statements write and read exactly the values the ORM would, on SQLite and PostgreSQL.
Everything else uses the ORM. These statements always run on the primary (`connection`),
never on a read replica: the run's path reads what it has just written.

`Keyset` answers a hot list's pages (a session's history) the same way: one statement per
page, rows that are not model instances, on the database the router picks for reads (a
replica inside `agentplatform.replicas.read`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, router
from django.db.models import Field, Model
from django.db.models.fields import AutoFieldMixin

M = TypeVar("M", bound=Model)


def table(model: type[Model]) -> str:
    """The model's table name, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """A field's column, quoted (`session` gives `"session_id"`)."""
    return _quoted(model._meta.get_field(name))  # type: ignore[arg-type]


def columns(model: type[Model], alias: str = "") -> str:
    """Every concrete column of the model, in field order (what `instances` reads)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + _quoted(f) for f in model._meta.concrete_fields)


def value(model: type[Model], name: str, given: Any) -> Any:
    """`given` as the ORM would send it for the field `name` (UUIDs, JSON, datetimes)."""
    field: Any = model._meta.get_field(name)
    return field.get_db_prep_save(given, connection)


def values(model: type[Model], *pairs: tuple[str, Any]) -> list[Any]:
    """Parameters for a statement, each (field name, value) prepared by its field."""
    return [value(model, name, given) for name, given in pairs]


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run a statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows a query returns, as the driver gives them (plain columns: ints, strings)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def insert(objects: Sequence[Model]) -> None:
    """One INSERT for all `objects` (of one model), their values prepared as `save` would
    (`auto_now_add` included). Their primary keys are not read back: the models written this
    way either set theirs (UUIDs) or are never looked up by it afterwards."""
    if not objects:
        return
    model = type(objects[0])
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objects for f in fields]
    names = ", ".join(_quoted(f) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    execute(f"INSERT INTO {table(model)} ({names}) VALUES {', '.join([row] * len(objects))}", values)  # noqa: S608
    for obj in objects:  # saved, as after `save()`
        obj._state.adding = False
        obj._state.db = connection.alias


def instances(model: type[M], sql: str, params: Sequence[Any]) -> list[M]:
    """Model instances from a query that selects `columns(model)`."""
    return [instance(model, row) for row in rows(sql, params)]


def instance(model: type[M], row: Sequence[Any], start: int = 0) -> M:
    """The model instance in `row[start:]` (its concrete columns, in field order: a join
    selects one model's columns after another's)."""
    fields = model._meta.concrete_fields
    values = [_convert(f, row[start + i]) for i, f in enumerate(fields)]
    return model.from_db(connection.alias, [f.attname for f in fields], values)


def convert(model: type[Model], name: str, raw: Any) -> Any:
    """A value read from the column of field `name`, as the ORM would give it."""
    return _convert(model._meta.get_field(name), raw)  # type: ignore[arg-type]


def _quoted(field: Field[Any, Any]) -> str:
    return connection.ops.quote_name(str(field.column))


def _convert(field: Field[Any, Any], raw: Any, db: Any = connection) -> Any:
    if raw is None:
        return None
    for converter, col in _converters(field):
        raw = converter(raw, col, db)
    return raw


@functools.cache
def _converters(field: Field[Any, Any]) -> list[tuple[Callable[..., Any], Any]]:
    """What the ORM applies to a column's value read from this database (JSON decoding,
    SQLite's datetimes and UUIDs, ...), found once per field."""
    col = field.get_col(field.model._meta.db_table)
    found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
    return [(converter, col) for converter in found]


# A keyset page's bound: DRF's CursorPagination filters `field__gt` or `field__lt`.
_BOUNDS = {"gt": ">", "lt": "<"}


@dataclasses.dataclass(frozen=True)
class Keyset(Generic[M]):
    """The rows of `model` matching `where` (field name, value pairs), as far as cursor
    pagination (`CursorPagination`) asks for them of a queryset: `order_by` one column,
    `filter` to one side of a position in it, one slice. Each page is one statement written
    once per shape, with no query building and no model instances: its rows are named tuples
    of the model's concrete fields (by `attname`: `run_id`), converted as the ORM would."""

    model: type[M]
    where: tuple[tuple[str, Any], ...]
    order: str = ""  # a field name, "-" first for descending
    bound: tuple[str, Any] | None = None  # ("position__lt", 10)

    def order_by(self, *fields: str) -> Keyset[M]:
        (order,) = fields  # one column: the pagination's, unique among these rows
        return dataclasses.replace(self, order=order)

    def filter(self, **lookups: Any) -> Keyset[M]:
        ((lookup, position),) = lookups.items()
        return dataclasses.replace(self, bound=(lookup, position))

    def __getitem__(self, part: slice) -> list[Any]:
        offset, stop = part.start or 0, part.stop
        assert part.step is None, "a page: no step"
        assert stop is not None, "a page: with an end"
        assert self.order, "a page: ordered"
        alias = router.db_for_read(self.model) or DEFAULT_DB_ALIAS
        db = connections[alias]  # looked up once: each lookup is a context-local's
        lookup = self.bound[0] if self.bound is not None else ""
        statement, bounded = _keyset_sql(self.model, tuple(name for name, _ in self.where), self.order, lookup)
        params = [_prepare(self.model, name, given, db) for name, given in self.where]
        if self.bound is not None:
            params.append(_prepare(self.model, bounded, self.bound[1], db))
        with db.cursor() as cursor:
            cursor.execute(statement, [*params, stop - offset, offset])
            found = cursor.fetchall()
        record, converted = _record(self.model)
        out = []
        for row in found:
            values = list(row)
            for i, field in converted:
                values[i] = _convert(field, values[i], db)
            out.append(record._make(values))
        return out


def _prepare(model: type[Model], name: str, given: Any, db: Any) -> Any:
    field: Any = model._meta.get_field(name)
    return field.get_db_prep_value(given, db, prepared=False)


@functools.cache
def _keyset_sql(model: type[Model], names: tuple[str, ...], order: str, lookup: str) -> tuple[str, str]:
    """The statement for a page of this shape (`lookup`: the bound's, or ""), and the field
    the bound compares."""
    conditions = [f"{column(model, name)} = %s" for name in names]
    bounded, _, comparison = lookup.partition("__")
    if lookup:
        conditions.append(f"{column(model, bounded)} {_BOUNDS[comparison]} %s")
    direction = "DESC" if order.startswith("-") else "ASC"
    statement = (
        f"SELECT {columns(model)} FROM {table(model)} WHERE {' AND '.join(conditions)}"  # noqa: S608
        f" ORDER BY {column(model, order.lstrip('-'))} {direction} LIMIT %s OFFSET %s"
    )
    return statement, bounded


@functools.cache
def _record(model: type[Model]) -> tuple[type[Any], list[tuple[int, Field[Any, Any]]]]:
    """The row type of a model's keyset pages, and which of its columns need converting."""
    fields = model._meta.concrete_fields
    record = collections.namedtuple(f"{model.__name__}Row", [f.attname for f in fields])  # type: ignore[misc]
    return record, [(i, f) for i, f in enumerate(fields) if _converters(f)]
