"""A run's events: stored in order with a sequence number, replayed as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.test import AsyncClient

from agents.api import streams
from agents.models import RunEvent
from tests import sample_agents
from tests.fakes.llm_server import Call, Error, Text, ToolCalls
from tests.infra import wait_until


def _read_sse(path: str, key: str, last_event_id: str | None = None) -> tuple[int, dict[str, str], list[dict]]:
    """Status, headers and parsed events of one SSE response, read to its end."""

    async def read() -> tuple[int, dict[str, str], str]:
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = await AsyncClient().get(path, headers=headers)
        body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
        return response.status_code, dict(response.headers), body.decode()

    status, headers, text = asyncio.run(read())
    assert text.startswith(": stream opened\n\n")  # headers and a first byte before any event
    frames = [frame for frame in text.split("\n\n") if frame.strip() and not frame.startswith(":")]
    parsed = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if not line.startswith(":"))
        parsed.append({"id": fields["id"], "event": fields["event"], **json.loads(fields["data"])})
    return status, headers, parsed


@pytest.mark.django_db(transaction=True)
def test_a_runs_events_are_ordered_and_match_its_steps(api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3}), Call("explode", {"reason": "x"})]), Text("5, and a failure"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "go"})

    status, headers, events = _read_sse(f"/api/v1/runs/{run['id']}/events/", api.key)

    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache, no-transform"
    assert headers["X-Accel-Buffering"] == "no"
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "run.started"),
        (2, "tool.call.started"),
        (3, "tool.call.started"),
        (4, "tool.call.completed"),
        (5, "tool.call.completed"),
        (6, "message.delta"),
        (7, "message.completed"),
        (8, "run.completed"),
    ]
    assert [e["id"] for e in events] == [str(e["seq"]) for e in events]
    assert events[0]["data"]["input"] == "go"
    assert events[1]["data"]["arguments"] == {"a": 2, "b": 3}
    assert events[3]["data"] == {
        "call_id": events[1]["data"]["call_id"],
        "name": "add",
        "result": "5",
        "is_error": False,
        "position": 2,
    }
    assert events[4]["data"]["is_error"] is True
    assert events[5]["data"] == {"text": "5, and a failure"}
    assert events[6]["data"]["content"] == "5, and a failure"
    assert events[7]["data"]["status"] == "completed"
    assert events[7]["data"]["usage"] == {"input_tokens": 20, "output_tokens": 10}


@pytest.mark.django_db(transaction=True)
def test_a_client_resumes_after_its_last_event_without_loss_or_duplicates(api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 1})]), Text("2"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "go"})
    path = f"/api/v1/runs/{run['id']}/events/"

    _, _, everything = _read_sse(path, api.key)
    _, _, rest = _read_sse(path, api.key, last_event_id="2")
    _, _, nothing = _read_sse(path, api.key, last_event_id=str(everything[-1]["seq"]))

    assert [e["seq"] for e in rest] == [e["seq"] for e in everything[2:]]
    assert rest == everything[2:]
    assert nothing == []


def _counting_pages(monkeypatch: pytest.MonkeyPatch, page: int) -> list[int]:
    """Stored events are read back `page` at a time; the sizes of the pages read, in order."""
    monkeypatch.setattr(streams, "REPLAY_PAGE", page)
    pages: list[int] = []
    read_page = streams.selectors.run_events_after

    def counted(run_id, after, limit):
        rows, status = read_page(run_id, after, limit)
        pages.append(len(rows))
        return rows, status

    monkeypatch.setattr(streams.selectors, "run_events_after", counted)
    return pages


@pytest.mark.django_db(transaction=True)
def test_a_finished_runs_stream_is_read_back_page_by_page(api, llm, monkeypatch):
    # Given a finished run with a tool call (more events than a page of 2)
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 1})]), Text("2"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "go"})
    stored = RunEvent.objects.filter(run_id=run["id"]).count()
    pages = _counting_pages(monkeypatch, 2)

    # When a client reads its stream
    _, _, everything = _read_sse(f"/api/v1/runs/{run['id']}/events/", api.key)

    # Then every event came once, in order, a page at a time up to the final event
    assert stored > 4
    assert [e["seq"] for e in everything] == list(range(1, stored + 1))
    assert pages == [2] * (stored // 2) + ([1] if stored % 2 else [])


@pytest.mark.django_db(transaction=True)
def test_a_stream_that_read_back_a_page_short_of_full_waits_live_without_reading_again(api, llm, monkeypatch):
    # Given a run paused for approval: its events are stored and it has not ended
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "Email Ann"})
    assert run["status"] == "awaiting_approval"
    pages = _counting_pages(monkeypatch, 500)

    async def follow() -> list[str]:
        """The run's events, until none comes for half a second."""
        followed = streams.run_events(uuid.UUID(run["id"]), uuid.UUID(run["session_id"]), 0)
        kinds = []
        async with contextlib.aclosing(followed):
            with contextlib.suppress(TimeoutError):
                while True:
                    event = await asyncio.wait_for(anext(followed), 0.5)
                    kinds.append(event["type"] if event is not None else "heartbeat")
        return kinds

    # When a client follows it from the start
    kinds = asyncio.run(follow())

    # Then it got the stored events, read in one page, and then waited for the rest live
    # (what is stored after that page arrives through its subscription)
    assert kinds[-1] == "run.awaiting_approval"
    assert pages == [len(kinds)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_ends_with_its_error(api, llm):
    llm.enqueue(*[Error(500, "down", headers={"retry-after-ms": "1"})] * 3)
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "go"})

    _, _, events = _read_sse(f"/api/v1/runs/{run['id']}/events/", api.key)

    assert [e["type"] for e in events] == ["run.started", "run.failed"]
    assert events[-1]["data"]["error"]["code"] == "provider_error"


@pytest.mark.django_db(transaction=True)
def test_events_are_stored_with_the_run(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+2"})

    stored = list(RunEvent.objects.filter(run_id=run["id"]).values_list("seq", "type"))

    assert stored == [
        (1, "run.started"),
        (2, "tool.call.started"),
        (3, "tool.call.completed"),
        (4, "tool.call.started"),
        (5, "tool.call.completed"),
        (6, "message.completed"),
        (7, "run.completed"),
    ]


@pytest.mark.django_db(transaction=True)
def test_another_users_run_and_a_bad_last_event_id(api, llm, make_api):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+2"})

    status, body = make_api("mallory").get(f"/api/v1/runs/{run['id']}/events/")
    assert (status, body["error"]["code"]) == (404, "run_not_found")
    status, body = api.get(f"/api/v1/runs/{run['id']}/events/?after=-1")
    assert (status, body["error"]["code"]) == (400, "invalid_request")


@pytest.mark.django_db(transaction=True)
def test_a_client_following_a_run_in_progress_gets_the_rest_live_in_order(api, llm, monkeypatch):
    # Given a run held inside a tool call, and a client that starts reading its events now
    # (with no fallback read of the database within the test's time: events must come live)
    monkeypatch.setattr(streams, "HEARTBEAT_SECONDS", 600.0)
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("through the gate"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "go", "background": True})
    wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)
    read: list = []
    reader = threading.Thread(
        target=lambda: read.append(_read_sse(f"/api/v1/runs/{run['id']}/events/", api.key)), daemon=True
    )
    reader.start()

    # When the run goes on
    time.sleep(0.3)
    sample_agents.GATE.set()
    reader.join(timeout=30)

    # Then the client has every event once, in order, up to the end
    assert read, "the stream did not end: events did not arrive live"
    _, _, got = read[0]
    assert [e["type"] for e in got] == [
        "run.started",
        "tool.call.started",
        "tool.call.completed",
        "message.delta",
        "message.completed",
        "run.completed",
    ]
    assert [e["seq"] for e in got] == [1, 2, 3, 4, 5, 6]


@pytest.mark.django_db(transaction=True)
def test_streams_that_end_or_are_closed_leave_no_redis_subscription_behind(api, llm):
    # Given a finished run, and the Redis subscriptions of this process's channel layer
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+2"})
    path = f"/api/v1/runs/{run['id']}/events/"
    headers = {"Authorization": f"Bearer {api.key}", "Accept": "text/event-stream"}
    redis_client = redis.Redis.from_url(settings.REDIS_URL)

    async def follow(read_to_the_end: bool) -> None:
        response = await AsyncClient().get(path, headers=headers)
        chunks = response.streaming_content.__aiter__()  # type: ignore[attr-defined]
        if read_to_the_end:
            _ = [chunk async for chunk in chunks]
        else:
            await anext(chunks)  # the opening comment
            await anext(chunks)  # the first event
            await chunks.aclose()
            # Django's wrappers leave the stream itself to be finalized when it is no longer
            # referenced: at once in a server, but the test client's response is kept in
            # cycles that a collection may not reach in time; so the client closes it, as the
            # server's finalizer does
            await response._iterator.aclose()  # type: ignore[attr-defined]

    async def subscriptions_left() -> set[bytes | str]:
        before = set(redis_client.pubsub_channels())
        # When clients read its events to the end, and others stop after the first event
        for _ in range(3):
            await follow(read_to_the_end=True)
            await follow(read_to_the_end=False)
        gc.collect()  # the test client's response holds the abandoned stream in a cycle
        # An abandoned generator's cleanup runs on the loop, in its own time: wait for it (a
        # leak would never clear). Checked inside the event loop: closing the loop would drop
        # its layer's connection, and Redis would forget the subscriptions anyway.
        left = set(redis_client.pubsub_channels()) - before
        for _ in range(100):
            if not left:
                break
            await asyncio.sleep(0.1)
            left = set(redis_client.pubsub_channels()) - before
        return left

    # Then nothing they subscribed to is left
    assert asyncio.run(subscriptions_left()) == set()
