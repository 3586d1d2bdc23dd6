"""Deleting many rows without long locks: a batch of primary keys per statement, each batch
in its own transaction.

Each batch (`delete_batch`) locks its rows (skipping those another transaction holds),
checks them again against the caller's conditions in the same statement, and deletes them
with what they own (as the models' `on_delete` say). A row that changed since it was
selected, or that another transaction holds, is passed over, and the walks end: up the
primary key (`delete_in_batches`), up an auto-increment key until the rows are too recent
(`delete_oldest`), or until nothing is left (`delete_all`). A dry run makes the same
statements and rolls each batch back: its counts are what would be deleted.

Counts are by model label (`agents.Session`, `agents.Run`, ...), as `QuerySet.delete` gives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet


def delete_in_batches(
    rows: QuerySet[Any],
    *,
    batch: int,
    dry_run: bool = False,
    bulk: Callable[[list[Any]], QuerySet[Any]] | None = None,
) -> Counter[str]:
    """Delete `rows`, `batch` primary keys at a time, walking the primary key upwards.

    `bulk(ids)`, when given, names the many rows a batch owns (a session's run events): they
    are deleted first, in batches of their own (`delete_all`), so that the batch's own
    transaction stays short. A dry run skips that step; the batch's rolled-back delete counts them.
    """
    deleted: Counter[str] = Counter()
    after: Any = None
    while True:
        page = rows if after is None else rows.filter(pk__gt=after)
        ids = list(page.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        if bulk is not None and not dry_run:
            deleted.update(delete_all(bulk(ids), batch=batch))
        deleted.update(delete_batch(rows, ids, dry_run=dry_run))
        after = ids[-1]


def delete_all(rows: QuerySet[Any], *, batch: int) -> Counter[str]:
    """Delete `rows`, `batch` at a time, in no order, until none is left (or a batch deletes
    none: the rest are locked elsewhere, for another time). In no order, each statement takes
    the first rows the cheapest plan finds (walking the primary key in order would sort all
    the rows a join finds, for every batch). Not for a dry run: it would find the same rows again.
    """
    deleted: Counter[str] = Counter()
    while ids := list(rows.order_by().values_list("pk", flat=True)[:batch]):
        counts = delete_batch(rows, ids)
        if not counts:
            break
        deleted.update(counts)
    return deleted


def delete_oldest(
    rows: QuerySet[Any], *, written: str, cutoff: datetime, batch: int, dry_run: bool = False
) -> Counter[str]:
    """Delete `rows` written before `cutoff`, for a table whose ids grow as rows are appended
    (an auto-increment key): walk up from the lowest id, `batch` rows at a time, and stop at the
    first row written (the `written` field) at or after the cutoff. No index on the time is
    needed, and a table with nothing to delete costs one short read.

    Rows appended out of order by a few seconds (concurrent transactions) are left for the next
    walk; a row is deleted only if it is older than the cutoff and `rows` holds it.
    """
    table: type[Model] = rows.model
    deleted: Counter[str] = Counter()
    after = 0
    while True:
        page = list(table._default_manager.filter(pk__gt=after).order_by("pk").values_list("pk", written)[:batch])
        older = [pk for pk, _ in _until(page, cutoff)]
        if older:
            deleted.update(delete_batch(rows, older, dry_run=dry_run))
        if len(older) < len(page) or len(page) < batch:  # reached the cutoff, or the end of the table
            return deleted
        after = page[-1][0]


def _until(page: list[tuple[Any, datetime]], cutoff: datetime) -> list[tuple[Any, datetime]]:
    for index, (_, at) in enumerate(page):
        if at >= cutoff:
            return page[:index]
    return page


def delete_batch(rows: QuerySet[Any], ids: Sequence[Any], *, dry_run: bool = False) -> dict[str, int]:
    """In one transaction: lock those of `ids` that `rows` still holds, and delete them."""
    with transaction.atomic():
        locked = rows.filter(pk__in=ids).order_by().select_for_update(skip_locked=True, of=("self",))
        _, counts = rows.model._default_manager.filter(pk__in=list(locked.values_list("pk", flat=True))).delete()
        if dry_run:
            transaction.set_rollback(True)
    return {label: count for label, count in counts.items() if count}
