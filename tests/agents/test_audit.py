"""What operators and keys change in agents, tools, API keys and schedules is in the audit log:
who, what, from where, the changed fields before and after."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agents.models import Agent, ApiKey, Schedule, Tool
from tests.conftest import Api
from tests.factories import create_api_key, create_user

pytestmark = pytest.mark.django_db(transaction=True)


def _only(target_type: TargetType, **filters: Any) -> AuditEntry:
    return AuditEntry.objects.get(target_type=target_type, **filters)


def _by_admin(entry: AuditEntry, staff: tuple[Any, Any]) -> bool:
    user, _ = staff
    return (entry.actor_id, entry.actor_name, entry.channel, entry.ip) == (user.pk, "root", Channel.ADMIN, "127.0.0.1")


def _agent_form(agent: Agent, tools: dict[str, dict[str, str]], **fields: str) -> dict[str, str]:
    rows = list(Tool.objects.filter(agent=agent).order_by("name"))
    form = {
        "enabled": "on",
        "model_override": "",
        "instructions_override": "",
        "approval_timeout": "",
        "approval_expiry_action": "reject",
        "tool_rows-TOTAL_FORMS": str(len(rows)),
        "tool_rows-INITIAL_FORMS": str(len(rows)),
        "tool_rows-MIN_NUM_FORMS": "0",
        "tool_rows-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for i, tool in enumerate(rows):
        row = {"id": str(tool.pk), "agent": str(agent.pk), "permission_override": "", "conditions": "[]"}
        row |= {"approval_timeout": "", "approval_expiry_action": "", **tools.get(tool.name, {})}
        form |= {f"tool_rows-{i}-{name}": value for name, value in row.items()}
    return form


def test_an_agents_overrides_changed_in_the_admin_are_recorded(admin_client, staff):
    agent = Agent.objects.get(name="oai")

    response = admin_client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        _agent_form(agent, {}, enabled="", model_override="openai:gpt-other", approval_timeout="01:00:00"),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    entry = _only(TargetType.AGENT)
    assert _by_admin(entry, staff)
    assert (entry.action, entry.target_id, entry.target_label) == (Action.CHANGED, str(agent.pk), "oai")
    assert entry.before == {"enabled": True, "model_override": "", "approval_timeout": None}
    assert entry.after == {"enabled": False, "model_override": "openai:gpt-other", "approval_timeout": "P0DT01H00M00S"}
    assert not AuditEntry.objects.filter(target_type=TargetType.TOOL).exists()  # no tool was changed


def test_a_tools_permission_and_conditions_changed_in_the_admin_are_recorded(admin_client, staff):
    agent = Agent.objects.get(name="oai")
    rules = [{"when": {"arg": "to", "op": "eq", "value": "ceo@example.com"}, "then": "deny"}]
    email = {"permission_override": "deny", "conditions": json.dumps(rules)}

    response = admin_client.post(f"/admin/agents/agent/{agent.pk}/change/", _agent_form(agent, {"send_email": email}))

    assert response.status_code == 302, response.content.decode()[:3000]
    entry = _only(TargetType.TOOL)
    tool = Tool.objects.get(agent=agent, name="send_email")
    assert _by_admin(entry, staff)
    assert (entry.action, entry.target_id, entry.target_label) == (Action.CHANGED, str(tool.pk), "oai.send_email")
    assert entry.before == {"permission_override": "", "conditions": []}
    assert entry.after == {"permission_override": "deny", "conditions": rules}
    assert not AuditEntry.objects.filter(
        target_type=TargetType.AGENT
    ).exists()  # the agent's own fields are as they were


def test_a_key_created_in_the_admin_is_recorded_without_its_secret(admin_client, staff):
    user = create_user("dave")
    calc = Agent.objects.get(name="calc")

    response = admin_client.post(
        "/admin/agents/apikey/add/",
        {"user": str(user.pk), "name": "ci", "agents": [str(calc.pk)], "scopes": '["approvals:decide"]'}
        | {"expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )

    assert response.status_code == 200
    api_key = ApiKey.objects.get(user=user)
    entry = _only(TargetType.API_KEY)
    assert _by_admin(entry, staff)
    assert (entry.action, entry.target_id, entry.before) == (Action.CREATED, str(api_key.pk), None)
    assert entry.after is not None
    assert entry.after["prefix"] == api_key.prefix
    assert (entry.after["user"], entry.after["agents"], entry.after["scopes"]) == (
        "dave",
        ["calc"],
        ["approvals:decide"],
    )
    assert "key_hash" not in entry.after
    assert api_key.key_hash not in json.dumps([entry.before, entry.after, entry.target_label])


def test_a_keys_limits_changed_and_the_key_revoked_and_deleted_in_the_admin_are_recorded(admin_client, staff):
    api_key, _ = create_api_key(create_user("erin"), name="ci")
    change = {"name": "ci", "scopes": "[]", "expires_at_0": "", "expires_at_1": "", "requests_per_minute": "30"}

    edited = admin_client.post(f"/admin/agents/apikey/{api_key.pk}/change/", change)
    admin_client.post("/admin/agents/apikey/", {"action": "revoke", "_selected_action": [str(api_key.pk)]})
    deleted = admin_client.post(f"/admin/agents/apikey/{api_key.pk}/delete/", {"post": "yes"})

    assert (edited.status_code, deleted.status_code) == (302, 302)
    entries = list(AuditEntry.objects.filter(target_type=TargetType.API_KEY, channel=Channel.ADMIN).order_by("id"))
    assert [e.action for e in entries] == [Action.CHANGED, Action.REVOKED, Action.DELETED]
    assert all(_by_admin(e, staff) and e.target_id == str(api_key.pk) for e in entries)
    assert (entries[0].before, entries[0].after) == ({"requests_per_minute": None}, {"requests_per_minute": 30})
    assert entries[1].before == {"revoked_at": None}
    assert entries[1].after is not None
    assert entries[1].after["revoked_at"]
    assert entries[2].before is not None
    assert (entries[2].before["prefix"], entries[2].after) == (api_key.prefix, None)


def test_keys_created_and_revoked_by_the_commands_are_recorded():
    out = io.StringIO()
    call_command("create_api_key", "--user", "ci-bot", "--name", "deploys", stdout=out, stderr=io.StringIO())
    api_key = ApiKey.objects.get(user__username="ci-bot")

    call_command("revoke_api_key", api_key.prefix, stdout=io.StringIO())
    call_command("revoke_api_key", api_key.prefix, stdout=io.StringIO())  # already revoked: nothing more

    entries = list(AuditEntry.objects.filter(target_type=TargetType.API_KEY).order_by("id"))
    assert [(e.action, e.channel) for e in entries] == [
        (Action.CREATED, Channel.COMMAND),
        (Action.REVOKED, Channel.COMMAND),
    ]
    assert [e.user_agent for e in entries] == ["manage.py create_api_key", "manage.py revoke_api_key"]
    assert all(e.actor_id is None and e.target_id == str(api_key.pk) for e in entries)
    assert out.getvalue().strip() not in json.dumps([e.after for e in entries])  # the key itself
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_schedules_made_changed_and_deleted_with_a_key_are_recorded(alice):
    api_key, key = create_api_key(alice)
    api = Api(key)
    headers = {"HTTP_USER_AGENT": "cron-sync/2", "HTTP_X_REQUEST_ID": "req-77"}
    api.client.defaults.update(headers)

    _, made = api.post(
        "/api/v1/schedules/", {"name": "nightly", "agent": "calc", "input": "1+1", "interval_seconds": 3600}
    )
    api.patch(f"/api/v1/schedules/{made['id']}/", {"interval_seconds": 60, "enabled": False})
    api.delete(f"/api/v1/schedules/{made['id']}/")

    entries = list(AuditEntry.objects.filter(target_type=TargetType.SCHEDULE).order_by("id"))
    assert [e.action for e in entries] == [Action.CREATED, Action.CHANGED, Action.DELETED]
    for entry in entries:
        assert (entry.actor_id, entry.api_key_id, entry.api_key_prefix) == (alice.pk, str(api_key.pk), api_key.prefix)
        assert (entry.channel, entry.ip, entry.user_agent, entry.request_id) == (
            Channel.API,
            "127.0.0.1",
            "cron-sync/2",
            "req-77",
        )
        assert (entry.target_id, entry.target_label) == (made["id"], "nightly")
    created, changed, deleted = entries
    assert created.after is not None
    assert (created.before, created.after["interval_seconds"], created.after["owner"]) == (None, 3600, "alice")
    assert changed.before == {"interval_seconds": 3600, "enabled": True}
    assert changed.after == {"interval_seconds": 60, "enabled": False}
    assert deleted.before is not None
    assert (deleted.before["interval_seconds"], deleted.after) == (60, None)
    assert not Schedule.objects.exists()


def test_a_schedule_edited_in_the_admin_is_recorded(admin_client, staff):
    user, _ = staff
    form = {
        "name": "hourly sums",
        "owner": str(user.pk),
        "agent": str(Agent.objects.get(name="calc").pk),
        "input": "1+1",
        "metadata": "{}",
        "cron": "",
        "timezone": "UTC",
        "interval_seconds": "3600",
        "ends_at_0": "",
        "ends_at_1": "",
        "enabled": "on",
        "session_strategy": "new",
        "session": "",
        "overlap": "skip",
    }
    assert admin_client.post("/admin/agents/schedule/add/", form).status_code == 302
    schedule = Schedule.objects.get()

    edited = admin_client.post(
        f"/admin/agents/schedule/{schedule.pk}/change/", {**form, "cron": "0 9 * * 1-5", "interval_seconds": ""}
    )

    assert edited.status_code == 302, edited.content.decode()[:3000]
    entries = list(AuditEntry.objects.filter(target_type=TargetType.SCHEDULE).order_by("id"))
    assert [e.action for e in entries] == [Action.CREATED, Action.CHANGED]
    assert all(_by_admin(e, staff) for e in entries)
    assert (entries[1].before, entries[1].after) == (
        {"cron": "", "interval_seconds": 3600},
        {"cron": "0 9 * * 1-5", "interval_seconds": None},
    )
