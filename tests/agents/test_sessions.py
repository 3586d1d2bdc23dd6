"""Sessions, their messages (cursor-paginated both ways) and their runs."""

from __future__ import annotations

import pytest

from agents.api.serializers import MessageSerializer
from agents.models import Message, Run, Session


def _messages(api, session_id: str, query: str = "") -> list[int]:
    """Every position, following `next` links."""
    positions: list[int] = []
    url = f"/api/v1/sessions/{session_id}/messages/?{query}"
    while url:
        status, page = api.get(url)
        assert status == 200, page
        positions += [m["position"] for m in page["results"]]
        url = page["next"] and page["next"].removeprefix("http://testserver")
    return positions


@pytest.mark.django_db(transaction=True)
def test_create_get_update_and_delete_a_session(api):
    status, session = api.post("/api/v1/sessions/", {"agent": "calc", "title": "sums", "metadata": {"team": "x"}})
    assert status == 201
    assert session["agent"] == "calc"
    assert session["message_count"] == 0

    status, patched = api.patch(f"/api/v1/sessions/{session['id']}/", {"title": "renamed"})
    assert status == 200
    assert (patched["title"], patched["metadata"]) == ("renamed", {"team": "x"})

    assert api.get(f"/api/v1/sessions/{session['id']}/")[1]["title"] == "renamed"
    assert api.delete(f"/api/v1/sessions/{session['id']}/")[0] == 204
    assert api.get(f"/api/v1/sessions/{session['id']}/")[0] == 404


@pytest.mark.django_db(transaction=True)
def test_a_run_in_a_created_session(api, llm):
    _, session = api.post("/api/v1/sessions/", {"agent": "calc"})

    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1", "session_id": session["id"]})

    assert status == 201
    assert run["session_id"] == session["id"]
    assert api.get(f"/api/v1/sessions/{session['id']}/")[1]["message_count"] == 6


@pytest.mark.django_db(transaction=True)
def test_deleting_a_session_removes_its_runs_and_messages(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    assert api.delete(f"/api/v1/sessions/{run['session_id']}/")[0] == 204

    assert (Session.objects.count(), Run.objects.count(), Message.objects.count()) == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_session_with_an_active_run_cannot_be_deleted(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    session = Session.objects.get(pk=run["session_id"])
    Run.objects.create(session=session, agent=session.agent, owner=session.owner, status="running", input="x")

    status, body = api.delete(f"/api/v1/sessions/{session.pk}/")

    assert (status, body["error"]["code"]) == (409, "session_busy")
    assert Session.objects.filter(pk=session.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_messages_page_oldest_first_and_newest_first(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    for _ in range(3):
        api.post("/api/v1/agents/calc/runs/", {"input": "2+2", "session_id": run["session_id"]})

    assert _messages(api, run["session_id"], "limit=5") == list(range(24))
    assert _messages(api, run["session_id"], "limit=7&order=desc") == list(reversed(range(24)))
    _, page = api.get(f"/api/v1/sessions/{run['session_id']}/messages/?order=desc&limit=2")
    assert [m["role"] for m in page["results"]] == ["assistant", "tool"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_previous_links_walk_back_through_the_same_pages(api, llm, order):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    for _ in range(2):
        api.post("/api/v1/agents/calc/runs/", {"input": "2+2", "session_id": run["session_id"]})
    forward, url = [], f"/api/v1/sessions/{run['session_id']}/messages/?order={order}&limit=4"
    while url:
        page = api.get(url)[1]
        forward.append(page["results"])
        url = page["next"] and page["next"].removeprefix("http://testserver")

    backward, url = [forward[-1]], page["previous"].removeprefix("http://testserver")
    while url:
        page = api.get(url)[1]
        backward.append(page["results"])
        url = page["previous"] and page["previous"].removeprefix("http://testserver")

    assert len(forward) == 5  # 18 messages, 4 to a page
    assert list(reversed(backward)) == forward


@pytest.mark.django_db(transaction=True)
def test_a_history_page_shows_each_message_as_the_model_serializer_does(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})  # a tool call, its result, answers

    page = api.get(f"/api/v1/sessions/{run['session_id']}/messages/")[1]

    stored = Message.objects.filter(session_id=run["session_id"]).order_by("position")
    assert page["results"] == MessageSerializer(stored, many=True).data
    assert any(m["tool_calls"] for m in page["results"])
    assert all(m["run_id"] == run["id"] for m in page["results"])


@pytest.mark.django_db(transaction=True)
def test_sessions_are_newest_first_and_filter_by_agent(api, llm):
    ids = [api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[1]["session_id"] for _ in range(3)]
    demo = api.post("/api/v1/agents/demo/runs/", {"input": "hello"})[1]["session_id"]

    _, page = api.get("/api/v1/sessions/?limit=2")
    assert [s["id"] for s in page["results"]] == [demo, ids[2]]
    _, second = api.get(page["next"].removeprefix("http://testserver"))
    assert [s["id"] for s in second["results"]] == [ids[1], ids[0]]
    _, only_calc = api.get("/api/v1/sessions/?agent=calc")
    assert [s["id"] for s in only_calc["results"]] == list(reversed(ids))


@pytest.mark.django_db(transaction=True)
def test_a_sessions_runs_newest_first(api, llm):
    _, first = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    _, second = api.post("/api/v1/agents/calc/runs/", {"input": "2+2", "session_id": first["session_id"]})

    _, page = api.get(f"/api/v1/sessions/{first['session_id']}/runs/")

    assert [r["id"] for r in page["results"]] == [second["id"], first["id"]]
    assert page["results"][0]["usage"]["total_tokens"] == 4


@pytest.mark.django_db(transaction=True)
def test_agents_list_their_tools_with_schemas_and_permissions(api):
    status, agent = api.get("/api/v1/agents/oai/")

    assert status == 200
    assert agent["model"] == "openai:gpt-test"
    assert agent["demo_model"] is False
    tools = {t["name"]: t for t in agent["tools"]}
    assert tools["send_email"]["permission"] == "confirm"
    assert tools["delete_everything"]["permission"] == "deny"
    assert tools["get_weather"]["parameters"]["properties"]["unit"] == {
        "default": "celsius",
        "description": "Temperature unit.",
        "enum": ["celsius", "fahrenheit"],
        "type": "string",
    }
    _, demo = api.get("/api/v1/agents/demo/")
    assert demo["demo_model"] is True


@pytest.mark.django_db(transaction=True)
def test_a_run_that_died_midway_leaves_the_session_usable_and_the_count_exact(api, llm):
    # Given a session whose last run died after writing messages, before finishing
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    session = Session.objects.get(pk=run["session_id"])
    dead = Run.objects.create(session=session, agent=session.agent, owner=session.owner, status="failed", input="x")
    Message.objects.create(session=session, run=dead, position=6, role="user", content="x")
    Message.objects.create(session=session, run=dead, position=7, role="assistant", content="partial")

    # When the next run comes
    status, second = api.post("/api/v1/agents/calc/runs/", {"input": "2+2", "session_id": str(session.pk)})

    # Then it continues after the last message, and the count is exact again
    assert status == 201
    assert [m["position"] for m in second["messages"]] == [8, 9, 10, 11, 12, 13]
    assert api.get(f"/api/v1/sessions/{session.pk}/")[1]["message_count"] == 14
