"""Recording audit entries: one per change, in the change's transaction, secrets redacted.

A service that changes the control plane takes the `Actor` and calls `record` (or
`record_change`, which keeps only the fields that changed) inside the transaction that
writes the change: the entry commits with the change, or neither does.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, AuditEntry, TargetType

REDACTED = "[redacted]"
# Fields whose value never reaches an entry: that they changed is recorded, not what they hold.
SECRET_FIELDS = frozenset(
    {"secret", "secret_encrypted", "credential", "credential_encrypted", "key_hash", "password", "key"}
)
LABEL_CHARS = 300

Snapshot = dict[str, Any]


def record(
    actor: Actor,
    action: Action,
    target_type: TargetType,
    *,
    target_id: Any = "",
    target_label: str = "",
    before: Snapshot | None = None,
    after: Snapshot | None = None,
) -> AuditEntry:
    """Write one entry (in the caller's transaction)."""
    user, key = actor.user, actor.api_key
    return AuditEntry.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        api_key_id=str(key.pk) if key is not None else "",
        api_key_prefix=key.prefix if key is not None else "",
        channel=actor.channel,
        action=action,
        target_type=target_type,
        target_id=str(target_id or "")[:64],
        target_label=target_label[:LABEL_CHARS],
        ip=_address(actor.ip),
        user_agent=actor.user_agent,
        request_id=actor.request_id,
        before=redact(before),
        after=redact(after),
    )


def record_change(
    actor: Actor,
    target_type: TargetType,
    instance: models.Model,
    before: Snapshot | None,
    after: Snapshot | None,
    *,
    action: Action | None = None,
) -> AuditEntry | None:
    """An entry for `instance` created (`before` None), deleted (`after` None) or changed
    (only the fields that differ; nothing is recorded when none does)."""
    if before is not None and after is not None:
        before, after = changed(before, after)
        if not after:
            return None
    verb = action or (Action.CREATED if before is None else Action.DELETED if after is None else Action.CHANGED)
    return record(
        actor, verb, target_type, target_id=instance.pk, target_label=str(instance), before=before, after=after
    )


def snapshot(instance: models.Model, fields: Iterable[str]) -> Snapshot:
    """The named fields as JSON: a related row as its text (a user as the username), several
    (many-to-many) as a sorted list of them, times in ISO 8601."""
    values: Snapshot = {}
    for name in fields:
        field = instance._meta.get_field(name)
        if field.many_to_many:
            value: Any = sorted(str(row) for row in getattr(instance, name).all())
        elif field.is_relation:
            related = getattr(instance, name)
            value = None if related is None else str(related)
        else:
            value = getattr(instance, name)
        values[name] = value
    jsonable: Snapshot = json.loads(json.dumps(values, cls=DjangoJSONEncoder))
    return jsonable


def as_stored(instance: models.Model, fields: Iterable[str]) -> Snapshot | None:
    """The snapshot of the row as the database has it now (None: not saved yet), read before a
    change is applied to it, locked for the rest of the transaction."""
    if instance._state.adding or instance.pk is None:
        return None
    manager = type(instance)._default_manager
    row = manager.select_for_update().filter(pk=instance.pk).first()
    return None if row is None else snapshot(row, fields)


def changed(before: Snapshot, after: Snapshot) -> tuple[Snapshot, Snapshot]:
    names = [name for name in after if before.get(name) != after[name]]
    return {name: before.get(name) for name in names}, {name: after[name] for name in names}


def redact(values: Snapshot | None) -> Snapshot | None:
    if values is None:
        return None
    return {name: REDACTED if name in SECRET_FIELDS and value else value for name, value in values.items()}


def _address(value: str | None) -> str | None:
    """An address the column takes (a proxy's header can hold anything): else none."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def delete_expired(cutoff: datetime, *, batch: int, dry_run: bool = False) -> int:
    """Retention, the one way entries leave: delete those written before `cutoff`, oldest
    first, `batch` per statement and transaction; the number deleted (dry run: that would be)."""
    older = AuditEntry.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return older.count()
    deleted = 0
    while ids := list(older.order_by("created_at", "id").values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            count, _ = models.QuerySet.delete(AuditEntry.objects.filter(pk__in=ids))  # past AuditQuerySet's refusal
        deleted += count
    return deleted
