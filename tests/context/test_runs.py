"""Runs get their agent's context: fetched before the turn, in the system prompt, recorded."""

from __future__ import annotations

import json
import logging

import pytest

from agents.models import Run
from context.models import ContextInjection
from tests.context.factories import bind_source
from tests.fakes import saas as fake
from tests.fakes.llm_server import Text


def _system_prompt(request) -> str:
    assert request.protocol == "openai"
    return next(m["content"] for m in request.body["messages"] if m["role"] == "system")


def _issues_source(saas, name="issues", **fields):
    """The fake GitHub issues endpoint read as a plain JSON API, its token stored encrypted."""
    return bind_source(
        name=name,
        provider="HTTPContext",
        parameters={"url": f"{saas.url}/github/repos/acme/app/issues", "fields": ["state"], "title_field": "title"},
        secret=fake.GITHUB_TOKEN,
        **fields,
    )


@pytest.mark.django_db(transaction=True)
def test_a_run_gets_the_code_and_admin_sources_in_its_system_prompt_and_records_them(api, llm, saas, caplog):
    caplog.set_level(logging.DEBUG)
    _issues_source(saas)
    llm.enqueue(Text("Refunds take 5 days; two issues are open."))

    status, run = api.post("/api/v1/agents/ctx/runs/", {"input": "What is open?"})

    assert status == 201, run
    assert run["status"] == "completed"
    prompt = _system_prompt(llm.requests[0])
    assert prompt.startswith("Answer from the context.\n\n# Context\n")
    assert '<context source="handbook" type="static"' in prompt
    assert '<item title="Refund policy">\nRefunds take 5 business days.\n</item>' in prompt
    assert '<context source="issues" type="http"' in prompt
    assert '<item title="Fix 1">\nstate: open\n</item>' in prompt
    assert saas.seen("github")[0].headers["authorization"] == f"Bearer {fake.GITHUB_TOKEN}"
    rows = list(ContextInjection.objects.filter(run_id=run["id"]).order_by("position"))
    assert [(r.source, r.kind, r.origin, r.status, r.item_count, r.cache_hit) for r in rows] == [
        ("handbook", "static", "code", "ok", 1, False),
        ("issues", "http", "admin", "ok", 2, False),  # one page: HTTPContext does not paginate
    ]
    assert all(r.chars > 0 and r.fetched_at is not None and r.error == "" for r in rows)
    assert sum(r.chars for r in rows) < len(prompt)
    assert fake.GITHUB_TOKEN not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_optional_source_that_fails_is_recorded_and_the_run_goes_on(api, llm, saas):
    bind_source(name="down", provider="HTTPContext", parameters={"url": f"{saas.url}/nowhere"})
    llm.enqueue(Text("ok"))

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})

    assert run["status"] == "completed"
    failed = ContextInjection.objects.get(run_id=run["id"], source="down")
    assert failed.status == "failed"
    assert failed.error.startswith("down: HTTP 404 from /nowhere")
    assert '<context source="down" type="http" status="unavailable"></context>' in _system_prompt(llm.requests[0])


@pytest.mark.django_db(transaction=True)
def test_a_required_source_that_fails_fails_the_run_before_the_model_is_called(api, llm, saas):
    bind_source(name="crm", provider="HTTPContext", parameters={"url": f"{saas.url}/nowhere"}, required=True)

    status, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})

    assert status == 201
    assert run["status"] == "failed"
    assert run["error"]["code"] == "context_unavailable"
    assert run["error"]["message"].startswith("The required context source 'crm' failed: crm: HTTP 404")
    assert run["error"]["details"]["source"] == "crm"
    assert llm.requests == []
    assert ContextInjection.objects.filter(run_id=run["id"], source="crm", status="failed").exists()


@pytest.mark.django_db(transaction=True)
def test_a_source_with_a_ttl_is_fetched_once_across_runs(api, llm, saas):
    _issues_source(saas, cache_ttl_seconds=300, name="cached-issues")
    llm.enqueue(Text("one"), Text("two"))

    _, first = api.post("/api/v1/agents/ctx/runs/", {"input": "1"})
    _, second = api.post("/api/v1/agents/ctx/runs/", {"input": "2"})

    hits = [ContextInjection.objects.get(run_id=run["id"], source="cached-issues").cache_hit for run in (first, second)]
    assert hits == [False, True]
    assert len(saas.seen("github")) == 1
    blocks = [_system_prompt(r).split('<context source="cached-issues"')[1] for r in llm.requests]
    assert blocks[0] == blocks[1]  # the same fetch, with the same fetched_at


@pytest.mark.django_db(transaction=True)
def test_a_misconfigured_bound_source_is_recorded_as_failed_and_skipped(api, llm):
    source = bind_source(name="broken")
    type(source).objects.filter(pk=source.pk).update(parameters={"text": "x", "no_such_option": 1})
    llm.enqueue(Text("ok"))

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})

    assert run["status"] == "completed"
    row = ContextInjection.objects.get(run_id=run["id"], source="broken")
    assert row.status == "failed"
    assert "misconfigured: StaticContext: " in row.error
    assert "no_such_option" in row.error


@pytest.mark.django_db(transaction=True)
def test_a_disabled_source_is_not_fetched(api, llm, saas):
    _issues_source(saas, enabled=False)
    llm.enqueue(Text("ok"))

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})

    assert saas.seen("github") == []
    assert list(ContextInjection.objects.filter(run_id=run["id"]).values_list("source", flat=True)) == ["handbook"]


@pytest.mark.django_db(transaction=True)
def test_the_stored_token_appears_nowhere_a_caller_or_operator_can_read(api, llm, saas, caplog, admin_client):
    caplog.set_level(logging.DEBUG)
    source = _issues_source(saas)
    llm.enqueue(Text("ok"))
    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "hi"})
    run_row = Run.objects.get(pk=run["id"])

    readable = [
        json.dumps(run),
        json.dumps(api.get(f"/api/v1/runs/{run['id']}/")[1]),
        json.dumps(api.get("/api/v1/context-sources/")[1]),
        json.dumps(api.get(f"/api/v1/context-sources/{source.pk}/")[1]),
        json.dumps(api.post(f"/api/v1/context-sources/{source.pk}/preview/", {})[1]),
        json.dumps(list(ContextInjection.objects.filter(run=run_row).values()), default=str),
        admin_client.get(f"/admin/agents/run/{run_row.pk}/change/").content.decode(),
        admin_client.get(f"/admin/context/contextsource/{source.pk}/change/").content.decode(),
        admin_client.get("/admin/context/contextsource/").content.decode(),
        admin_client.get(f"/admin/context/contextsource/{source.pk}/preview/").content.decode(),
        caplog.text,
    ]

    assert all(fake.GITHUB_TOKEN not in text for text in readable)
    assert fake.GITHUB_TOKEN not in source.credential_encrypted
    assert "stored, encrypted (never shown)" in readable[7]
