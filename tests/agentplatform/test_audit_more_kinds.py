"""The audit log records what the pages of Django's auth, django-otp and django-axes change
(users, groups and permissions, TOTP devices, unlocks), what the platform changes by itself
(approvals expiring, schedules ending), and forgets entries past their retention."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agentplatform.audit.services import REDACTED
from agents import tasks
from agents.models import Schedule
from agents.services.retention import purge_expired
from approvals import services as approvals
from approvals.models import ApprovalRequest
from tests.factories import SETUP, create_user

pytestmark = pytest.mark.django_db(transaction=True)


def _by_root(entry: AuditEntry) -> bool:
    return (entry.actor_name, entry.channel) == ("root", Channel.ADMIN)


def test_a_user_added_and_their_password_changed_in_the_admin_are_recorded_without_the_hash(admin_client):
    added = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "carol", "usable_password": "true", "password1": "Pw-for-carol-1", "password2": "Pw-for-carol-1"},
    )
    carol = get_user_model().objects.get(username="carol")
    changed = admin_client.post(
        f"/admin/auth/user/{carol.pk}/password/",
        {"password1": "Other-pw-for-carol-2", "password2": "Other-pw-for-carol-2"},
    )

    assert (added.status_code, changed.status_code) == (302, 302)
    created, password = AuditEntry.objects.filter(target_type=TargetType.USER, target_id=str(carol.pk)).order_by("id")
    assert created.after is not None
    assert (created.action, created.after["username"], created.after["password"]) == (Action.CREATED, "carol", REDACTED)
    assert (password.action, password.before, password.after) == (
        Action.CHANGED,
        {"password": REDACTED},
        {"password": REDACTED},
    )
    assert _by_root(created)
    assert _by_root(password)
    stored = json.dumps([created.after, password.before, password.after])
    assert "pbkdf2" not in stored
    assert get_user_model().objects.get(pk=carol.pk).password not in stored


def test_a_group_and_its_permissions_edited_in_the_admin_are_recorded(admin_client):
    decide = Permission.objects.get(codename="view_auditentry")

    response = admin_client.post("/admin/auth/group/add/", {"name": "auditors", "permissions": [str(decide.pk)]})

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(target_type=TargetType.GROUP)
    assert (entry.action, entry.target_label, entry.after) == (
        Action.CREATED,
        "auditors",
        {"name": "auditors", "permissions": [str(decide)]},
    )
    assert _by_root(entry)


def test_a_totp_device_deleted_in_the_admin_is_recorded_without_its_key(admin_client):
    device = TOTPDevice.objects.create(user=create_user("carol"), name="phone", confirmed=True)

    response = admin_client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(target_type=TargetType.OTP_DEVICE)
    assert entry.before is not None
    assert (entry.action, entry.after, entry.before["user"], entry.before["key"]) == (
        Action.DELETED,
        None,
        "carol",
        REDACTED,
    )
    assert device.key not in json.dumps(entry.before)
    assert _by_root(entry)


def test_an_unlock_in_the_admin_is_recorded(admin_client):
    attempt = AccessAttempt.objects.create(
        username="carol", ip_address="203.0.113.7", failures_since_start=5, user_agent="x", path_info="/admin/login/"
    )

    response = admin_client.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    entry = AuditEntry.objects.get(target_type=TargetType.SIGN_IN_ATTEMPTS)
    assert entry.before is not None
    assert (
        entry.action,
        entry.before["username"],
        entry.before["ip_address"],
        entry.before["failures_since_start"],
    ) == (
        Action.UNLOCKED,
        "carol",
        "203.0.113.7",
        5,
    )
    assert _by_root(entry)


def test_an_approval_expired_by_the_periodic_task_is_recorded_as_the_systems(api):
    status, run = api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    request = ApprovalRequest.objects.get()
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert approvals.expire_due() == 1

    entry = AuditEntry.objects.get(target_type=TargetType.APPROVAL)
    assert (entry.action, entry.channel, entry.actor_id, entry.user_agent) == (
        Action.EXPIRED,
        Channel.SYSTEM,
        None,
        "expire_approvals",
    )
    assert (entry.target_id, entry.before, entry.after) == (
        str(request.pk),
        {"status": "pending"},
        {"status": "expired", "expiry_action": "reject"},
    )


def test_a_schedule_that_disables_itself_at_its_end_is_recorded_as_the_systems(api):
    ends_at = (timezone.now() + timedelta(hours=1)).isoformat()
    status, schedule = api.post(
        "/api/v1/schedules/",
        {"name": "sums", "agent": "calc", "input": "1+1", "interval_seconds": 60, "ends_at": ends_at},
    )
    assert status == 201, schedule
    Schedule.objects.filter(pk=schedule["id"]).update(ends_at=timezone.now() - timedelta(seconds=1))

    assert tasks.fire_schedule(schedule["id"])["outcome"] == "ended"

    entry = AuditEntry.objects.get(target_type=TargetType.SCHEDULE, channel=Channel.SYSTEM)
    assert (entry.action, entry.target_id, entry.before, entry.after) == (
        Action.CHANGED,
        schedule["id"],
        {"enabled": True},
        {"enabled": False},
    )


def _entry_written(days_ago: float) -> Any:
    return AuditEntry.objects.create(
        created_at=timezone.now() - timedelta(days=days_ago),
        channel=SETUP.channel,
        action=Action.CHANGED,
        target_type=TargetType.AGENT,
        target_label=f"{days_ago} days ago",
    )


def test_entries_past_their_retention_are_deleted_by_the_retention_job(settings):
    old, older, recent = _entry_written(31), _entry_written(400), _entry_written(29)
    assert purge_expired() == {}  # kept forever by default

    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "AUDIT_RETENTION_DAYS": 30, "RETENTION_BATCH_SIZE": 1}
    dry = purge_expired(dry_run=True)
    kept_by_the_dry_run = AuditEntry.objects.count()
    done = purge_expired()

    assert (dry, kept_by_the_dry_run, done) == ({"audit.AuditEntry": 2}, 3, {"audit.AuditEntry": 2})
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]
    assert {old.pk, older.pk}.isdisjoint(AuditEntry.objects.values_list("pk", flat=True))
