"""The context-sources API: scoped list and detail, previews, and bad input."""

from __future__ import annotations

import pytest

from context import services
from context.models import ContextInjection, ContextSource
from tests.context.factories import bind_source
from tests.factories import agent_row


@pytest.mark.django_db
def test_a_key_lists_the_sources_of_the_agents_it_may_use(make_api):
    ctx_source = bind_source(
        name="handbook2",
        credential_env="HANDBOOK_TOKEN",
        provider="HTTPContext",
        parameters={"url": "https://example.com/x"},
    )
    bind_source(agent="calc", name="calc-notes")
    everyone, limited = make_api("bob"), make_api("carol", agents=[agent_row("calc")])

    _, all_sources = everyone.get("/api/v1/context-sources/")
    _, calc_only = limited.get("/api/v1/context-sources/")
    _, filtered = everyone.get("/api/v1/context-sources/?agent=ctx")

    assert sorted(s["name"] for s in all_sources["results"]) == ["calc-notes", "handbook2"]
    assert [s["name"] for s in calc_only["results"]] == ["calc-notes"]
    assert [s["name"] for s in filtered["results"]] == ["handbook2"]
    detail = everyone.get(f"/api/v1/context-sources/{ctx_source.pk}/")[1]
    assert detail["credential"] == {"kind": "env", "env": "HANDBOOK_TOKEN"}
    assert detail["provider"] == "agentplatform.sdk.context.HTTPContext"
    assert limited.get(f"/api/v1/context-sources/{ctx_source.pk}/")[1]["error"]["code"] == "context_source_not_found"


@pytest.mark.django_db
def test_a_stored_credential_is_described_but_never_returned(make_api):
    source = bind_source(name="gh", provider="GitHubContext", parameters={"repo": "acme/app"}, secret="ghp_shh")

    body = make_api().get(f"/api/v1/context-sources/{source.pk}/")[1]

    assert body["credential"] == {"kind": "stored"}
    assert "ghp_shh" not in str(body)


@pytest.mark.django_db
def test_preview_shows_exactly_the_text_a_run_would_get_and_stores_nothing(make_api):
    source = bind_source(name="policy", parameters={"text": "Be kind.", "title": "Rules"}, cache_ttl_seconds=60)

    status, preview = make_api().post(f"/api/v1/context-sources/{source.pk}/preview/", {})

    assert status == 200
    assert preview["name"] == "policy"
    assert preview["kind"] == "static"
    assert preview["rendered"].startswith("# Context\n")
    assert '<context source="policy" type="static"' in preview["rendered"]
    assert '<item title="Rules">\nBe kind.\n</item>' in preview["rendered"]
    assert (preview["item_count"], preview["items_shown"], preview["truncated"], preview["error"]) == (1, 1, False, "")
    assert preview["chars"] == len(preview["rendered"].split("\n\n", 2)[2])  # the source's block
    assert ContextInjection.objects.count() == 0
    provider = services.build_provider(source)
    cache = services.context_cache()
    assert cache is not None
    assert cache.get_many([provider.cache_key()]) == {}


@pytest.mark.django_db
def test_preview_reports_a_failing_source_in_the_body(make_api):
    source = bind_source(
        name="down", provider="HTTPContext", parameters={"url": "http://127.0.0.1:1/x"}, timeout_seconds=2
    )

    status, preview = make_api().post(f"/api/v1/context-sources/{source.pk}/preview/", {})

    assert status == 200
    assert preview["error"].startswith("down: ConnectError")
    assert 'status="unavailable"' in preview["rendered"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/context-sources/999999/preview/", {}, 404, "context_source_not_found"),
        ("/api/v1/context-sources/abc/preview/", {}, 404, "not_found"),
        ("/api/v1/context-sources/{id}/preview/", {"fresh": True}, 400, "invalid_request"),
        ("/api/v1/context-sources/{id}/preview/", [1, 2], 400, "invalid_request"),
        ("/api/v1/context-sources/{id}/preview/", "not json", 400, "malformed_json"),
        ("/api/v1/context-sources/?limit=0", None, 400, "invalid_request"),
        ("/api/v1/context-sources/?cursor=bogus", None, 400, "invalid_cursor"),
        ("/api/v1/context-sources/-1/", None, 404, "not_found"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_code_and_writes_nothing(make_api, path, body, status, code):
    source = bind_source(name="policy")
    before = (ContextSource.objects.count(), ContextInjection.objects.count())
    api = make_api()
    url = path.replace("{id}", str(source.pk))

    if body is None:
        got, answer = api.get(url)
    elif body == "not json":
        got, answer = api.post(url, raw="{not json")
    else:
        got, answer = api.post(url, body)

    assert got == status
    assert answer["error"]["code"] == code
    assert (ContextSource.objects.count(), ContextInjection.objects.count()) == before


@pytest.mark.django_db
def test_a_misconfigured_source_previews_as_a_400(make_api):
    source = bind_source(name="policy")
    ContextSource.objects.filter(pk=source.pk).update(parameters={"txt": "typo"})

    status, body = make_api().post(f"/api/v1/context-sources/{source.pk}/preview/", {})

    assert status == 400
    assert body["error"]["code"] == "invalid_context_source"
    assert "txt" in body["error"]["message"]


@pytest.mark.django_db
def test_the_api_needs_a_key(db):
    from tests.conftest import Api

    status, body = Api(None).get("/api/v1/context-sources/")

    assert status == 401
    assert body["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_staff_signed_in_to_the_admin_see_every_source(admin_client):
    bind_source(agent="calc", name="calc-notes")

    response = admin_client.get("/api/v1/context-sources/")

    assert response.status_code == 200
    assert [s["name"] for s in response.json()["results"]] == ["calc-notes"]
