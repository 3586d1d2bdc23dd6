"""Context sources bound, changed and unbound in the admin are in the audit log; a stored
credential is recorded as changed, never by value."""

from __future__ import annotations

import json

import pytest

from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agentplatform.audit.services import REDACTED
from context.models import ContextSource
from tests.factories import agent_row

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/context/contextsource/add/"


def _form(**overrides: str) -> dict[str, str]:
    return {
        "agent": str(agent_row("ctx").pk),
        "name": "gh",
        "provider": "agentplatform.sdk.context.GitHubContext",
        "parameters": '{"repo": "acme/app"}',
        "enabled": "on",
        "position": "0",
        "timeout_seconds": "10",
        "max_chars": "4000",
        "cache_ttl_seconds": "0",
        "credential_env": "",
        "secret": "",
        **overrides,
    }


def test_a_source_bound_changed_and_unbound_in_the_admin_is_recorded_without_its_credential(admin_client, staff):
    user, _ = staff

    assert admin_client.post(ADD_URL, _form(secret="ghp_first_token")).status_code == 302
    source = ContextSource.objects.get(name="gh")
    url = f"/admin/context/contextsource/{source.pk}/change/"
    encrypted = source.credential_encrypted
    assert admin_client.post(url, _form(parameters='{"repo": "acme/other"}', secret="ghp_second")).status_code == 302
    assert admin_client.post(url, _form(parameters='{"repo": "acme/other"}', clear_secret="on")).status_code == 302
    deleted = admin_client.post(f"/admin/context/contextsource/{source.pk}/delete/", {"post": "yes"})

    assert deleted.status_code == 302
    entries = list(AuditEntry.objects.filter(target_type=TargetType.CONTEXT_SOURCE).order_by("id"))
    assert [e.action for e in entries] == [Action.CREATED, Action.CHANGED, Action.CHANGED, Action.DELETED]
    assert all((e.actor_id, e.channel, e.ip) == (user.pk, Channel.ADMIN, "127.0.0.1") for e in entries)
    assert all((e.target_id, e.target_label) == (str(source.pk), "ctx: gh") for e in entries)
    created, rebound, cleared, _ = entries
    assert created.after is not None
    assert (created.after["agent"], created.after["credential_encrypted"]) == ("ctx", REDACTED)
    assert rebound.before == {"parameters": {"repo": "acme/app"}, "credential_encrypted": REDACTED}
    assert rebound.after == {"parameters": {"repo": "acme/other"}, "credential_encrypted": REDACTED}
    assert (cleared.before, cleared.after) == ({"credential_encrypted": REDACTED}, {"credential_encrypted": ""})
    recorded = json.dumps([[e.before, e.after] for e in entries])
    for secret in ("ghp_first_token", "ghp_second", encrypted):
        assert secret not in recorded
