"""A key sees only its user's sessions and runs, and only the agents it is limited to."""

from __future__ import annotations

import pytest

from tests.factories import agent_row


@pytest.fixture
def alices_run(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+2"})
    return run


@pytest.mark.django_db(transaction=True)
def test_another_user_cannot_see_or_touch_alices_session(alices_run, make_api):
    bob = make_api("bob")
    session_id, run_id = alices_run["session_id"], alices_run["id"]

    for status, body in [
        bob.get(f"/api/v1/sessions/{session_id}/"),
        bob.get(f"/api/v1/sessions/{session_id}/messages/"),
        bob.get(f"/api/v1/sessions/{session_id}/runs/"),
        bob.patch(f"/api/v1/sessions/{session_id}/", {"title": "mine now"}),
        bob.delete(f"/api/v1/sessions/{session_id}/"),
        bob.post("/api/v1/agents/calc/runs/", {"input": "1+1", "session_id": session_id}),
    ]:
        assert status == 404
        assert body["error"]["code"] == "session_not_found"
    status, body = bob.get(f"/api/v1/runs/{run_id}/")
    assert status == 404
    assert body["error"]["code"] == "run_not_found"
    assert bob.get("/api/v1/sessions/")[1]["results"] == []


@pytest.mark.django_db(transaction=True)
def test_alice_sees_her_own(alices_run, api):
    status, body = api.get(f"/api/v1/runs/{alices_run['id']}/")

    assert status == 200
    assert body["output"] == "3 (and tool_denied)"
    assert [s["id"] for s in api.get("/api/v1/sessions/")[1]["results"]] == [alices_run["session_id"]]


@pytest.mark.django_db(transaction=True)
def test_a_key_limited_to_some_agents(make_api, llm):
    limited = make_api("carol", agents=[agent_row("calc")])

    assert [a["id"] for a in limited.get("/api/v1/agents/")[1]["results"]] == ["calc"]
    assert limited.get("/api/v1/agents/demo/")[0] == 404
    status, body = limited.post("/api/v1/agents/demo/runs/", {"input": "hi"})
    assert (status, body["error"]["code"]) == (404, "agent_not_found")
    status, body = limited.post("/api/v1/sessions/", {"agent": "demo"})
    assert (status, body["error"]["code"]) == (404, "agent_not_found")
    assert limited.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[0] == 201


@pytest.mark.django_db(transaction=True)
def test_health_is_public_and_the_rest_is_not(client):
    assert client.get("/api/v1/health/").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready/").json()
    assert {**ready, "span_route": "ok"} == {  # "off" when no tracing test has turned it on
        "status": "ready",
        "database": "ok",
        "redis": "ok",
        "broker": "ok",
        "span_route": "ok",
    }
    assert ready["span_route"] in ("ok", "off")
    for path in ["/api/v1/agents/", "/api/v1/sessions/", "/api/v1/agents/demo/"]:
        assert client.get(path).status_code == 401
