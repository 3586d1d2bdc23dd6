"""The audit log itself: append-only, read-only in the admin, `GET /api/v1/audit/` for staff
keys with filters, written in the change's transaction, and admin sign-ins recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, AppendOnly, AuditEntry, Channel, TargetType
from agentplatform.audit.services import REDACTED, record
from agents.models import ApiKey
from tests.conftest import Api
from tests.factories import SETUP, create_api_key, create_user, totp_code

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3cret-pass"
LOGIN = "/admin/login/?next=/admin/"


def _entry(**overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {"target_id": "42", "target_label": "thing", "before": {"a": 1}, "after": {"a": 2}}
    fields |= overrides
    return record(SETUP, Action.CHANGED, TargetType.SCHEDULE, **fields)


def _staff_key(username: str = "auditor") -> str:
    return create_api_key(create_user(username, is_staff=True))[1]


def test_an_entry_cannot_be_changed_or_deleted_through_the_orm():
    entry = _entry()

    entry.after = {"a": 3}
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(after={"a": 3})
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.bulk_update([entry], ["after"])

    assert AuditEntry.objects.get(pk=entry.pk).after == {"a": 2}


def test_a_change_that_rolls_back_leaves_no_entry_and_no_entry_is_left_without_its_change():
    user = create_user("frank")

    def create_then_fail() -> None:
        with transaction.atomic():
            create_api_key(user, name="doomed")
            raise RuntimeError("the rest of the request failed")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert not ApiKey.objects.filter(user=user).exists()
    assert not AuditEntry.objects.filter(target_type=TargetType.API_KEY).exists()


def test_secret_fields_are_redacted_whatever_the_caller_passes():
    entry = _entry(before={"secret_encrypted": "gAAAA-old", "url": "a"}, after={"secret_encrypted": "gAAAA-new"})

    assert entry.before == {"secret_encrypted": REDACTED, "url": "a"}
    assert entry.after == {"secret_encrypted": REDACTED}


def test_the_admin_shows_entries_read_only_with_filters_and_search(admin_client):
    entry = _entry(target_label="nightly report")

    listing = admin_client.get("/admin/audit/auditentry/?action__exact=changed&target_type__exact=schedule&q=nightly")
    page = admin_client.get(f"/admin/audit/auditentry/{entry.pk}/change/").content.decode()

    assert listing.status_code == 200
    assert "nightly report" in listing.content.decode()
    assert "nightly report" in page
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/audit/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_api_is_for_staff_keys_only(make_api):
    _entry()

    status, body = make_api("bob").get("/api/v1/audit/")

    assert (status, body["error"]["code"]) == (403, "audit_forbidden")


def test_a_staff_key_lists_entries_newest_first_a_page_at_a_time():
    api = Api(_staff_key())
    old = _entry(target_id="1")
    new = _entry(target_id="2")

    status, first = api.get("/api/v1/audit/?limit=1")
    _, second = api.get(first["next"])

    assert status == 200
    assert [e["id"] for e in first["results"] + second["results"]] == [new.pk, old.pk]
    shown = first["results"][0]
    assert shown | {"created_at": None} == {
        "id": new.pk,
        "created_at": None,
        "actor": "",
        "actor_id": None,
        "api_key_id": "",
        "api_key_prefix": "",
        "channel": "command",
        "action": "changed",
        "target_type": "schedule",
        "target_id": "2",
        "target_label": "thing",
        "ip": None,
        "user_agent": "manage.py tests",
        "request_id": "",
        "before": {"a": 1},
        "after": {"a": 2},
    }


def test_the_api_filters_by_action_target_and_time():
    api = Api(_staff_key())
    revoked = record(SETUP, Action.REVOKED, TargetType.API_KEY, target_id="7")
    _entry(target_id="7")
    _entry(target_id="8")
    now = timezone.now()

    def ids(query: str) -> list[int]:
        status, body = api.get(f"/api/v1/audit/?{query}")
        assert status == 200, body
        return [entry["id"] for entry in body["results"]]

    assert ids("action=revoked") == [revoked.pk]
    assert ids("target_type=api_key&target_id=7") == [revoked.pk]
    assert len(ids("target_type=schedule")) == 2
    assert ids("target_id=8") != []
    assert ids(f"until={(now - timedelta(hours=1)).isoformat().replace('+00:00', 'Z')}") == []
    assert len(ids(f"since={(now - timedelta(hours=1)).isoformat().replace('+00:00', 'Z')}")) >= 3
    for bad in ("action=exploded", "target_type=planet", "since=yesterday", "until=0001-01-01T00:00:00+05:00"):
        status, body = api.get(f"/api/v1/audit/?{bad}")
        assert (status, body["error"]["code"]) == (400, "invalid_request"), bad


def test_the_endpoint_is_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/v1/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/audit/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"action", "target_type", "target_id", "since", "until"}
    assert {"200", "403"} <= set(operation["responses"])


# Sign-ins.


@pytest.fixture
def root(db: None) -> tuple[Any, TOTPDevice]:
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _sign_in(password: str, code: str, *, address: str = "203.0.113.9") -> int:
    client = Client(REMOTE_ADDR=address, HTTP_USER_AGENT="Firefox/140")
    return client.post(LOGIN, {"username": "root", "password": password, "otp_token": code}).status_code


def test_a_successful_sign_in_is_recorded_with_the_user_and_address(root):
    user, device = root

    assert _sign_in(PASSWORD, totp_code(device)) == 302

    entry = AuditEntry.objects.get(action=Action.SIGNED_IN)
    assert (entry.actor_id, entry.actor_name, entry.channel) == (user.pk, "root", Channel.ADMIN)
    assert (entry.target_type, entry.target_id, entry.target_label) == (TargetType.USER, str(user.pk), "root")
    assert (entry.ip, entry.user_agent) == ("203.0.113.9", "Firefox/140")


def test_failed_sign_ins_and_the_lockout_are_recorded_without_the_password(root, settings):
    user, device = root
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_FAILURES": 2}

    assert _sign_in("wrong-1", "000000") == 200
    assert _sign_in("wrong-2", "000000") == 429  # the second failure locks out
    assert _sign_in(PASSWORD, totp_code(device)) == 429  # refused while locked out

    entries = list(AuditEntry.objects.filter(target_type=TargetType.USER).order_by("id"))
    assert [e.action for e in entries] == [Action.SIGN_IN_FAILED, Action.LOCKED_OUT, Action.LOCKED_OUT]
    assert all(e.actor_id is None and e.target_label == "root" and e.ip == "203.0.113.9" for e in entries)
    assert entries[0].target_id == str(user.pk)
    stored = " ".join(str(e.after) for e in entries)
    assert "wrong-1" not in stored
    assert PASSWORD not in stored


def test_the_address_behind_trusted_proxies_is_the_clients(settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_TRUSTED_PROXIES": 1}
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")

    client.post(LOGIN, {"username": "nobody", "password": "x", "otp_token": "1"})

    entry = AuditEntry.objects.get(action=Action.SIGN_IN_FAILED)
    assert (entry.ip, entry.target_label, entry.target_id) == ("198.51.100.7", "nobody", "")


def test_a_garbled_forwarded_address_is_left_out_not_an_error(settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_TRUSTED_PROXIES": 1}
    actor = Actor(Channel.API, ip="unknown")

    entry = record(actor, Action.CREATED, TargetType.WEBHOOK)

    assert entry.ip is None
