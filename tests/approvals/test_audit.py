"""Approval decisions and webhook endpoints in the audit log: who decided (the user, the key,
the channel, from where), the proposed call before and the decision after (its comment and
the diff of edited arguments); endpoints created, changed and deleted, their secret never
recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agentplatform.audit.services import REDACTED
from approvals.models import WebhookEndpoint
from tests.approvals.conftest import DECIDE, EMAIL, VIEW, create_staff, finished, pause, sign_in
from tests.conftest import Api
from tests.factories import create_api_key
from tests.fakes.llm_server import Text

pytestmark = pytest.mark.django_db(transaction=True)

URL = "http://127.0.0.1:9/hooks"


def test_an_approval_with_edits_and_a_comment_through_the_api_is_recorded(api, alice, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent."))
    api_key, key = create_api_key(alice, scopes=["approvals:decide"])
    reviewer = Api(key)
    reviewer.client.defaults.update(HTTP_USER_AGENT="review-bot/3", HTTP_X_REQUEST_ID="req-9")
    edited = {**EMAIL, "to": "carol@example.com"}

    status, body = reviewer.post(
        f"/api/v1/approvals/{approval.pk}/approve", {"arguments": edited, "comment": "carol handles it"}
    )

    assert status == 200, body
    finished(approval.run_id)
    entry = AuditEntry.objects.get(target_type=TargetType.APPROVAL)
    assert (entry.action, entry.target_id) == (Action.APPROVED, str(approval.pk))
    assert (entry.actor_id, entry.api_key_id, entry.api_key_prefix) == (alice.pk, str(api_key.pk), api_key.prefix)
    assert (entry.channel, entry.ip, entry.user_agent, entry.request_id) == (
        Channel.API,
        "127.0.0.1",
        "review-bot/3",
        "req-9",
    )
    assert entry.before == {"status": "pending", "arguments": EMAIL}
    assert entry.after == {
        "status": "approved",
        "approved_arguments": edited,
        "diff": [{"op": "replace", "path": "/to", "old": "bob@example.com", "new": "carol@example.com"}],
        "comment": "carol handles it",
        "channel": "api",
    }


def test_a_rejection_in_the_admin_inbox_is_recorded(api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Not sent."))
    user, device = create_staff("reviewer", VIEW, DECIDE)
    client = sign_in(user, device)

    form = {"decision": "reject", "reason": "Not to bob.", "comment": "policy"}
    response = client.post(f"/admin/approvals/approvalrequest/{approval.pk}/decide/", form)

    assert response.status_code == 302
    finished(approval.run_id)
    entry = AuditEntry.objects.get(target_type=TargetType.APPROVAL)
    assert (entry.action, entry.actor_id, entry.actor_name, entry.api_key_id) == (
        Action.REJECTED,
        user.pk,
        "reviewer",
        "",
    )
    assert (entry.channel, entry.ip) == (Channel.ADMIN, "127.0.0.1")
    assert entry.after == {"status": "rejected", "reason": "Not to bob.", "comment": "policy", "channel": "admin"}


def test_a_refused_decision_records_nothing(api, alice, llm):
    approval = pause(api, llm)
    _, key = create_api_key(alice)  # without the decide scope

    status, _ = Api(key).post(f"/api/v1/approvals/{approval.pk}/approve", {})

    assert status == 403
    assert not AuditEntry.objects.filter(target_type=TargetType.APPROVAL).exists()


@pytest.fixture
def manager(alice: Any, settings: Any) -> tuple[Any, Api]:
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "WEBHOOKS_ALLOW_PRIVATE": True}
    api_key, key = create_api_key(alice, scopes=["webhooks:manage"])
    return api_key, Api(key)


def test_webhook_endpoints_created_changed_and_deleted_are_recorded_without_their_secret(alice, manager):
    api_key, api = manager

    status, made = api.post("/api/v1/webhooks/", {"url": URL, "event_types": ["run.completed"]})
    assert status == 201, made
    encrypted = WebhookEndpoint.objects.get(pk=made["id"]).secret_encrypted
    api.patch(f"/api/v1/webhooks/{made['id']}/", {"secret": "a-new-secret-of-32-characters!!!"})
    api.patch(f"/api/v1/webhooks/{made['id']}/", {"enabled": False, "description": "paused"})
    api.patch(f"/api/v1/webhooks/{made['id']}/", {"enabled": False})  # no change: nothing recorded
    api.delete(f"/api/v1/webhooks/{made['id']}/")

    entries = list(AuditEntry.objects.filter(target_type=TargetType.WEBHOOK).order_by("id"))
    assert [e.action for e in entries] == [Action.CREATED, Action.CHANGED, Action.CHANGED, Action.DELETED]
    assert all((e.actor_id, e.api_key_id, e.channel) == (alice.pk, str(api_key.pk), Channel.API) for e in entries)
    assert all((e.target_id, e.target_label) == (made["id"], URL) for e in entries)
    created, rotated, paused, deleted = entries
    assert created.after is not None
    assert (created.after["url"], created.after["secret_encrypted"]) == (URL, REDACTED)
    assert (rotated.before, rotated.after) == ({"secret_encrypted": REDACTED}, {"secret_encrypted": REDACTED})
    assert (paused.before, paused.after) == (
        {"enabled": True, "description": ""},
        {"enabled": False, "description": "paused"},
    )
    assert deleted.after is None
    recorded = json.dumps([[e.before, e.after] for e in entries])
    for secret in (made["secret"], "a-new-secret-of-32-characters!!!", encrypted):
        assert secret not in recorded


def test_a_webhook_endpoint_made_in_the_admin_is_recorded(admin_client, staff, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "WEBHOOKS_ALLOW_PRIVATE": True}
    user, _ = staff
    form = {"owner": str(user.pk), "url": URL, "description": "", "event_types": ["run.completed"], "enabled": "on"}

    response = admin_client.post("/admin/approvals/webhookendpoint/add/", {**form, "secret": "s" * 20})
    endpoint = WebhookEndpoint.objects.get()
    deleted = admin_client.post(f"/admin/approvals/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"})

    assert (response.status_code, deleted.status_code) == (302, 302)
    entries = list(AuditEntry.objects.filter(target_type=TargetType.WEBHOOK).order_by("id"))
    assert [(e.action, e.channel, e.actor_id) for e in entries] == [
        (Action.CREATED, Channel.ADMIN, user.pk),
        (Action.DELETED, Channel.ADMIN, user.pk),
    ]
    assert "s" * 20 not in json.dumps([[e.before, e.after] for e in entries])
