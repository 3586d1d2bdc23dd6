"""The admin (behind 2FA): agents with overrides, readable transcripts, runs, API keys, schedules."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from agents import tasks
from agents.models import Agent, ApiKey, Schedule, Tool
from tests.conftest import Api
from tests.factories import create_api_key, create_user, totp_code


@pytest.mark.django_db(transaction=True)
def test_with_one_authenticator_password_and_code_sign_in_in_one_step(staff):
    _, device = staff
    code = totp_code(device)

    response = Client().post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "s3cret-pass", "otp_token": code}
    )

    assert response.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_wrong_code_does_not_sign_in(staff):
    response = Client().post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "s3cret-pass", "otp_token": "000000"}
    )

    assert response.status_code == 200
    assert "Please enter the correct username, password and authentication code" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_password_alone_does_not_open_the_admin(staff):
    client = Client()
    client.force_login(staff[0])  # a password session, no second factor

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db(transaction=True)
def test_agents_show_the_demo_label_and_take_overrides(admin_client):
    page = admin_client.get("/admin/agents/agent/").content.decode()
    assert "offline demo model, no LLM" in page

    agent = Agent.objects.get(name="oai")
    change = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/")
    assert change.status_code == 200
    tools = list(Tool.objects.filter(agent=agent).order_by("name"))
    form = {
        "enabled": "",
        "model_override": "openai:gpt-other",
        "instructions_override": "Be verbose.",
        "approval_timeout": "",
        "approval_expiry_action": "reject",
        "tool_rows-TOTAL_FORMS": str(len(tools)),
        "tool_rows-INITIAL_FORMS": str(len(tools)),
        "tool_rows-MIN_NUM_FORMS": "0",
        "tool_rows-MAX_NUM_FORMS": "1000",
    }
    for i, tool in enumerate(tools):
        form[f"tool_rows-{i}-id"] = str(tool.pk)
        form[f"tool_rows-{i}-agent"] = str(agent.pk)
        form[f"tool_rows-{i}-permission_override"] = "deny" if tool.name == "add" else ""

    response = admin_client.post(f"/admin/agents/agent/{agent.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    agent.refresh_from_db()
    assert (agent.enabled, agent.model, agent.instructions) == (False, "openai:gpt-other", "Be verbose.")
    assert Tool.objects.get(agent=agent, name="add").permission == "deny"


def _agent_form(agent: Agent, tool_changes: dict[str, dict[str, str]], **fields: str) -> dict[str, str]:
    """The agent page's form as a browser posts it, with these tools' inline fields changed."""
    tools = list(Tool.objects.filter(agent=agent).order_by("name"))
    form = {
        "enabled": "on",
        "model_override": "",
        "instructions_override": "",
        "approval_timeout": "",
        "approval_expiry_action": "reject",
        "tool_rows-TOTAL_FORMS": str(len(tools)),
        "tool_rows-INITIAL_FORMS": str(len(tools)),
        "tool_rows-MIN_NUM_FORMS": "0",
        "tool_rows-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for i, tool in enumerate(tools):
        row = {"id": str(tool.pk), "agent": str(agent.pk), "permission_override": "", "conditions": "[]"}
        row |= {"approval_timeout": "", "approval_expiry_action": "", **tool_changes.get(tool.name, {})}
        form |= {f"tool_rows-{i}-{name}": value for name, value in row.items()}
    return form


@pytest.mark.django_db(transaction=True)
def test_tool_conditions_and_approval_expiry_are_edited_on_the_agent_page(admin_client):
    agent = Agent.objects.get(name="oai")
    rules = [{"when": {"arg": "a", "op": "gt", "value": 100}, "then": "confirm"}]
    add_row = {"conditions": json.dumps(rules), "approval_timeout": "00:05:00", "approval_expiry_action": "cancel_run"}
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert 'name="tool_rows-0-conditions"' in page
    assert 'name="approval_expiry_action"' in page

    response = admin_client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        _agent_form(agent, {"add": add_row}, approval_timeout="01:00:00", approval_expiry_action="cancel_run"),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    add = Tool.objects.get(agent=agent, name="add")
    assert (add.conditions, add.approval_timeout, add.approval_expiry_action) == (
        rules,
        timedelta(minutes=5),
        "cancel_run",
    )
    assert Tool.objects.get(agent=agent, name="get_weather").conditions == []  # an empty box too: no rules
    agent.refresh_from_db()
    assert (agent.approval_timeout, agent.approval_expiry_action) == (timedelta(hours=1), "cancel_run")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("conditions", "error"),
    [
        ('[{"when": {"arg": "c", "op": "gt", "value": 1}, "then": "confirm"}]', "no argument &#x27;c&#x27;"),
        ('[{"when": {"arg": "a", "op": "like", "value": 1}, "then": "confirm"}]', "like"),
        ('[{"when": {"arg": "a", "op": "gt", "value": 1}, "then": "maybe"}]', "must be one of allow, confirm, deny"),
        ('{"when": 1}', "Conditions must be a list of rules."),
        ("[{", "Enter a valid JSON."),
    ],
)
def test_invalid_conditions_are_refused_with_the_error_on_the_field(admin_client, conditions, error):
    agent = Agent.objects.get(name="oai")

    response = admin_client.post(
        f"/admin/agents/agent/{agent.pk}/change/", _agent_form(agent, {"add": {"conditions": conditions}})
    )

    assert response.status_code == 200
    cell = re.search(r'<td class="field-conditions">(.*?)</td>', _row_of(response.content.decode(), "add"), re.S)
    assert cell is not None
    assert 'class="errorlist' in cell.group(1)
    assert error in cell.group(1)
    assert Tool.objects.get(agent=agent, name="add").conditions == []


def _row_of(page: str, tool: str) -> str:
    """The inline row of one tool (rows are in name order; each starts with its <tr>)."""
    rows = re.findall(r'<tr class="form-row[^"]*"[^>]*>.*?</tr>', page, re.S)
    return next(row for row in rows if re.search(rf'<td class="field-name">\s*<p>{tool}</p>', row))


@pytest.mark.django_db(transaction=True)
def test_an_operator_override_changes_the_next_run(admin_client, api, llm):
    tool = Tool.objects.get(agent__name="calc", name="add")
    tool.permission_override = "deny"
    tool.save()

    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    assert run["status"] == "failed"  # the calculator's add is refused, and its code raises
    assert run["messages"][2]["content"].startswith("Refused")


@pytest.mark.django_db(transaction=True)
def test_a_session_transcript_is_readable_in_order(admin_client, api, llm):
    _, run = api.post("/api/v1/agents/demo/runs/", {"input": "What's the weather in Oslo?"})

    page = admin_client.get(f"/admin/agents/session/{run['session_id']}/change/").content.decode()

    positions = [page.index(text) for text in ["#0 user", "#1 assistant", "#2 tool", "#3 assistant"]]
    assert positions == sorted(positions)
    assert "What&#x27;s the weather in Oslo?" in page
    assert "get_weather" in page
    assert "{&quot;city&quot;: &quot;Oslo&quot;}" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/agents/session/", "/admin/agents/run/", "/admin/agents/apikey/", "/admin/agents/apikey/add/"],
)
def test_admin_pages_render(admin_client, api, llm, path):
    api.post("/api/v1/agents/demo/runs/", {"input": "hello"})

    assert admin_client.get(path).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_run_page_renders(admin_client, api, llm):
    _, run = api.post("/api/v1/agents/demo/runs/", {"input": "hello"})

    page = admin_client.get(f"/admin/agents/run/{run['id']}/change/")

    assert page.status_code == 200
    assert "hello" in page.content.decode()
    assert "#1 run.started" in page.content.decode()
    assert "#4 run.completed" in page.content.decode()  # after message.delta, message.completed


@pytest.mark.django_db(transaction=True)
def test_creating_a_key_shows_it_once_and_it_works(admin_client, llm):
    user = create_user("dave")

    response = admin_client.post(
        "/admin/agents/apikey/add/",
        {"user": str(user.pk), "name": "ci", "scopes": "[]", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )

    page = response.content.decode()
    key = re.search(r"<code id='new-api-key'>(ap_[^<]+)</code>", page)
    assert key, page[:3000]
    api_key = ApiKey.objects.get(user=user)
    assert api_key.key_hash != key.group(1)
    assert key.group(1) not in admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()
    assert Api(key.group(1)).get("/api/v1/agents/")[0] == 200


@pytest.mark.django_db(transaction=True)
def test_revoking_keys_from_the_list(admin_client):
    api_key, key = create_api_key(create_user("erin"))

    response = admin_client.post(
        "/admin/agents/apikey/", {"action": "revoke", "_selected_action": [str(api_key.pk)]}, follow=True
    )

    assert "1 key(s) revoked." in response.content.decode()
    status, body = Api(key).get("/api/v1/agents/")
    assert (status, body["error"]["code"]) == (401, "api_key_revoked")


@pytest.mark.django_db(transaction=True)
def test_the_docs_need_a_key_or_an_admin_session(client, api, admin_client, settings):
    assert client.get("/api/v1/schema/").status_code == 401
    assert client.get("/api/v1/docs/").status_code == 401
    assert api.get("/api/v1/schema/?format=json")[0] == 200
    assert admin_client.get("/api/v1/docs/").status_code == 200
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "API_DOCS_PUBLIC": True}
    assert client.get("/api/v1/docs/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_openapi_schema_describes_the_api_and_its_key_scheme(admin_client):
    response = admin_client.get("/api/v1/schema/?format=json")

    schema = response.json()
    assert "/api/v1/agents/{agent}/runs/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `manage.py create_api_key` or the admin: `Authorization: Bearer ap_…`",
    }
    assert admin_client.get("/api/v1/docs/").status_code == 200


def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "/api/v1/sessions/{session_id}/messages/" in (tmp_path / "schema.yaml").read_text()


def _schedule_form(staff_user, **overrides) -> dict[str, str]:
    form = {
        "name": "hourly sums",
        "owner": str(staff_user.pk),
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
    return {**form, **overrides}


@pytest.mark.django_db(transaction=True)
def test_a_schedule_made_and_edited_in_the_admin_keeps_beats_row_in_step(admin_client, staff):
    user, _ = staff

    created = admin_client.post("/admin/agents/schedule/add/", _schedule_form(user))

    assert created.status_code == 302, created.content.decode()[:3000]
    schedule = Schedule.objects.get()
    assert (schedule.owner, schedule.api_key) == (user, None)
    assert PeriodicTask.objects.select_related("interval").get(pk=schedule.periodic_task_id).interval.every == 3600
    edited = admin_client.post(
        f"/admin/agents/schedule/{schedule.pk}/change/",
        _schedule_form(user, cron="30 6 * * *", timezone="Asia/Tokyo", interval_seconds="", enabled=""),
    )
    assert edited.status_code == 302, edited.content.decode()[:3000]
    task = PeriodicTask.objects.select_related("crontab").get(pk=schedule.periodic_task_id)
    assert (task.interval_id, task.crontab.hour, str(task.crontab.timezone), task.enabled) == (
        None,
        "6",
        "Asia/Tokyo",
        False,
    )
    assert "30 6 * * * (Asia/Tokyo)" in admin_client.get("/admin/agents/schedule/").content.decode()
    deleted = admin_client.post(f"/admin/agents/schedule/{schedule.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert (Schedule.objects.count(), PeriodicTask.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cron": "0 25 * * *", "interval_seconds": ""}, "cron"),
        ({"cron": "0 9 * * *", "interval_seconds": "", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"interval_seconds": "3"}, "interval_seconds"),
    ],
)
def test_a_bad_schedule_in_the_admin_is_a_form_error(admin_client, staff, overrides, field):
    user, _ = staff

    response = admin_client.post("/admin/agents/schedule/add/", _schedule_form(user, **overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert (Schedule.objects.count(), PeriodicTask.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_schedule_page_shows_its_firings_with_links_to_runs(admin_client, api):
    _, schedule = api.post(
        "/api/v1/schedules/", {"name": "sums", "agent": "calc", "input": "1+1", "interval_seconds": 60}
    )
    summary = tasks.fire_schedule(schedule["id"])

    page = admin_client.get(f"/admin/agents/schedule/{schedule['id']}/change/").content.decode()

    assert f"/admin/agents/run/{summary['run_id']}/change/" in page
    assert "started" in page
    assert admin_client.get("/admin/agents/schedule/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_beats_own_tables_are_not_in_the_admin(admin_client):
    index = admin_client.get("/admin/").content.decode()

    assert "/admin/agents/schedule/" in index
    assert "django_celery_beat" not in index
    assert admin_client.get("/admin/django_celery_beat/periodictask/").status_code == 404
