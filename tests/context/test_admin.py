"""Binding sources in the admin: validated against the provider, secrets stored encrypted and
never shown, a preview; the run page shows what was injected."""

from __future__ import annotations

import pytest

from context import crypto
from context.models import ContextSource
from tests.context.factories import bind_source
from tests.factories import agent_row
from tests.fakes.llm_server import Text

ADD_URL = "/admin/context/contextsource/add/"


def _form(**overrides):
    data = {
        "agent": agent_row("ctx").pk,
        "name": "gh",
        "provider": "agentplatform.sdk.context.GitHubContext",
        "parameters": '{"repo": "acme/app", "include": "issues"}',
        "enabled": "on",
        "position": "0",
        "timeout_seconds": "10",
        "max_chars": "4000",
        "cache_ttl_seconds": "0",
        "credential_env": "",
        "secret": "",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db(transaction=True)
def test_an_operator_binds_a_source_with_a_secret_that_is_stored_encrypted_and_never_shown(admin_client):
    response = admin_client.post(ADD_URL, _form(secret="ghp_from_the_admin"))

    assert response.status_code == 302, response.content.decode()[:3000]
    source = ContextSource.objects.get(name="gh")
    assert source.credential_encrypted
    assert "ghp_from_the_admin" not in source.credential_encrypted
    assert crypto.decrypt(source.credential_encrypted) == "ghp_from_the_admin"
    page = admin_client.get(f"/admin/context/contextsource/{source.pk}/change/").content.decode()
    assert "ghp_from_the_admin" not in page
    assert "stored, encrypted (never shown)" in page
    assert "/preview/" in page


@pytest.mark.django_db(transaction=True)
def test_saving_again_without_a_secret_keeps_the_stored_one_and_clearing_removes_it(admin_client):
    source = bind_source(name="gh", provider="GitHubContext", parameters={"repo": "acme/app"}, secret="ghp_one")
    url = f"/admin/context/contextsource/{source.pk}/change/"

    assert admin_client.post(url, _form(parameters='{"repo": "acme/other"}')).status_code == 302
    source.refresh_from_db()
    assert crypto.decrypt(source.credential_encrypted) == "ghp_one"
    assert source.parameters == {"repo": "acme/other"}

    assert admin_client.post(url, _form(clear_secret="on")).status_code == 302
    source.refresh_from_db()
    assert source.credential_encrypted == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"parameters": '{"repo": "not a repo"}'}, "repo must be"),
        ({"parameters": '{"repo": "acme/app", "colour": "red"}'}, "unexpected keyword argument"),
        ({"parameters": '{"repo": "acme/app", "headers": {"Authorization": "Bearer x"}}'}, "looks like a credential"),
        ({"parameters": '{"repo": "acme/app", "timeout": 3}'}, "own fields"),
        ({"parameters": "[1]"}, "must be a JSON object"),
        ({"provider": "os.system"}, "Select a valid choice"),
        ({"credential_env": "GH_TOKEN", "secret": "ghp_x"}, "not both"),
        ({"credential_env": "not a name"}, "environment variable"),
        (
            {"provider": "agentplatform.sdk.context.StaticContext", "parameters": '{"text": "x"}', "secret": "s"},
            "takes no credential",
        ),
    ],
)
def test_invalid_sources_are_refused_with_the_reason_and_nothing_is_saved(admin_client, overrides, error):
    response = admin_client.post(ADD_URL, _form(**overrides))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ContextSource.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_files_can_be_bound_only_under_the_configured_roots(admin_client, settings, tmp_path):
    (tmp_path / "kb.md").write_text("knowledge")
    form = _form(provider="agentplatform.sdk.context.FileContext", parameters=f'{{"paths": "{tmp_path / "kb.md"}"}}')

    refused = admin_client.post(ADD_URL, form)
    settings.AGENTPLATFORM_CONTEXT = {**settings.AGENTPLATFORM_CONTEXT, "FILE_ROOTS": [str(tmp_path)]}
    accepted = admin_client.post(ADD_URL, form)

    assert "outside the directories" in refused.content.decode()
    assert accepted.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_stdio_mcp_server_may_run_only_a_listed_program(admin_client, settings):
    form = _form(provider="agentplatform.sdk.context.MCPContext", parameters='{"command": ["/bin/sh", "-c", "id"]}')

    refused = admin_client.post(ADD_URL, form)
    settings.AGENTPLATFORM_CONTEXT = {**settings.AGENTPLATFORM_CONTEXT, "MCP_COMMANDS": ["/bin/sh"]}
    accepted = admin_client.post(ADD_URL, form)

    assert "is not in AGENTPLATFORM_CONTEXT_MCP_COMMANDS" in refused.content.decode()
    assert accepted.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_preview_page_shows_the_text_that_would_be_injected(admin_client):
    source = bind_source(name="policy", parameters={"text": "Refunds need a receipt.", "title": "Refunds"})

    page = admin_client.get(f"/admin/context/contextsource/{source.pk}/preview/").content.decode()

    assert "&lt;context source=&quot;policy&quot; type=&quot;static&quot;" in page
    assert "Refunds need a receipt." in page
    assert "1 of 1 shown" in page


@pytest.mark.django_db(transaction=True)
def test_the_run_page_shows_what_each_source_injected(admin_client, api, llm):
    bind_source(name="down", provider="HTTPContext", parameters={"url": "http://127.0.0.1:1/x"}, timeout_seconds=2)
    llm.enqueue(Text("ok"))
    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})

    page = admin_client.get(f"/admin/agents/run/{run['id']}/change/").content.decode()

    assert "Context injected into this run" in page
    assert "handbook" in page
    assert "down: ConnectError" in page
