"""Audit entries: who changed what in the control plane, when, from where, before and after."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """An audit entry is never changed or deleted once written."""


class Action(models.TextChoices):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    REVOKED = "revoked"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # an approval request that took its expiry action
    UNLOCKED = "unlocked"  # a sign-in lockout lifted (its access attempts deleted in the admin)
    SIGNED_IN = "signed_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    LOCKED_OUT = (
        "locked_out",
        "locked out",
    )  # a failed sign-in that locked the account or address, or was refused by a lockout


class TargetType(models.TextChoices):
    AGENT = "agent"
    TOOL = "tool"
    API_KEY = "api_key", "API key"
    APPROVAL = "approval"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    CONTEXT_SOURCE = "context_source", "Context source"
    USER = "user"  # users (and their sign-ins, and their limits)
    GROUP = "group"
    OTP_DEVICE = "otp_device", "OTP device"
    SIGN_IN_ATTEMPTS = "sign_in_attempts", "Sign-in attempts"  # django-axes' record of failures


class Channel(models.TextChoices):
    """How the change reached the platform."""

    ADMIN = "admin"
    API = "api", "API"
    WEBSOCKET = "websocket", "WebSocket"
    COMMAND = "command"  # a management command
    SYSTEM = "system"  # the platform itself (a periodic task, a schedule reaching its end)


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are never updated.")

    def delete(self) -> NoReturn:
        raise AppendOnly("Audit entries are never deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are never updated.")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are never updated.")


class AuditEntry(models.Model):
    """One change (or sign-in). Written by `services.record` in the change's transaction;
    `save` refuses an update and `delete` refuses, as do the queryset's."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The user is kept by id (no database constraint, nothing cascades here): the entry
    # outlives the user, whose name at the time is in `actor_name`.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="The user's name at the time.")
    api_key_id = models.CharField(max_length=64, blank=True, help_text="The API key that made the change, if any.")
    api_key_prefix = models.CharField(max_length=32, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.CharField(max_length=32, choices=TargetType.choices)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=100, blank=True, help_text="X-Request-Id, or a WebSocket message's id.")
    before = models.JSONField(null=True, blank=True, help_text="The changed fields before (secrets redacted).")
    after = models.JSONField(null=True, blank=True, help_text="The changed fields after (secrets redacted).")

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "audit_entry"
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        default_permissions = ("view",)  # no right to add, change or delete one exists to be granted
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created"),
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target_created"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_created"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.actor_name or 'anonymous'} {self.action} {self.target_type} {self.target_label or self.target_id}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Audit entries are never updated.")
        kwargs["force_insert"] = True  # an INSERT, never an UPDATE of a row with the same id
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are never deleted.")
