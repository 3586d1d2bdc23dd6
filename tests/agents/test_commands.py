"""`create_api_key`, `create_admin` and `sync_agents`."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from agents.models import Agent, ApiKey
from tests.conftest import Api


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_create_api_key_prints_only_the_key_on_stdout_and_creates_the_user():
    out, err = _run("create_api_key", "--user", "frank", "--agents", "calc", "--scopes", "approvals:decide")

    key = out.strip()
    assert "\n" not in key
    assert key.startswith("ap_")
    assert "shown once" in err
    api_key = ApiKey.objects.get(user__username="frank")
    assert api_key.scopes == ["approvals:decide"]
    assert list(api_key.agents.values_list("name", flat=True)) == ["calc"]
    assert not api_key.user.has_usable_password()
    assert [a["id"] for a in Api(key).get("/api/v1/agents/")[1]["results"]] == ["calc"]


@pytest.mark.django_db
def test_create_api_key_makes_a_key_that_manages_webhooks():
    out, _ = _run("create_api_key", "--user", "wendy", "--scopes", "webhooks:manage")

    status, body = Api(out.strip()).get("/api/v1/webhooks/")

    assert ApiKey.objects.get(user__username="wendy").scopes == ["webhooks:manage"]
    assert (status, body["results"]) == (200, [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "nope"], "unknown agents: nope"),
        (["--scopes", "root"], "unknown scopes: root"),
        (["--expires-days", "0"], "at least 1"),
    ],
)
def test_create_api_key_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        _run("create_api_key", "--user", "gina", *args)
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_create_admin_makes_a_staff_user_with_a_totp_device():
    out, _ = _run("create_admin", "--username", "ops", "--password", "a-long-password")

    user = get_user_model().objects.get(username="ops")
    assert user.is_staff
    assert user.is_superuser
    assert user.check_password("a-long-password")
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed
    assert "otpauth://totp/" in out


@pytest.mark.django_db
def test_sync_keeps_overrides_and_retires_agents_no_longer_in_code(settings):
    Agent.objects.filter(name="oai").update(model_override="openai:other", enabled=False)
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "AGENTS": ["tests.sample_agents:calculator"]}

    out, _ = _run("sync_agents")

    assert "1 agents synced" in out
    oai = Agent.objects.get(name="oai")
    assert (oai.registered, oai.model_override, oai.enabled) == (False, "openai:other", False)
    assert Agent.objects.get(name="calc").registered
