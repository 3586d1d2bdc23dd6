"""Waiting for runs on a real Daphne: a waiting client holds no thread, overload is an
answer (503 before anything is written, 202 once a run is stored), never an error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from agentplatform.conf import platform_settings
from agents.models import Agent, ApiKey, Run, RunStatus, Session
from tests.conftest import MODEL_SECONDS, serving_daphne

pytestmark = pytest.mark.django_db(transaction=True)


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


async def _post_many(base: str, key: str, count: int, on_waiting) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=headers) as client:
        posts = [
            asyncio.create_task(client.post("/api/v1/agents/oai/runs/", json={"input": f"hello {n}"}))
            for n in range(count)
        ]
        await asyncio.sleep(MODEL_SECONDS / 2)  # all of them are waiting on the model now
        on_waiting()
        return await asyncio.gather(*posts)


def test_a_hundred_clients_wait_for_their_runs_with_the_web_process_holding_no_thread_each(api, slow_model, tmp_path):
    with serving_daphne(tmp_path / "daphne.log") as daphne:
        base = daphne.url.replace("ws://", "http://")
        idle = _threads(daphne.pid)
        seen: list[int] = []

        responses = asyncio.run(_post_many(base, api.key, 100, lambda: seen.append(_threads(daphne.pid))))

    assert [r.status_code for r in responses] == [201] * 100
    assert {r.json()["status"] for r in responses} == {"completed"}
    assert all(r.json()["messages"][-1]["content"] == "done" for r in responses)
    # while they waited, the web process had its pool's threads and a few helpers' (the database
    # pool's own workers, for one), not one per client
    bound = platform_settings().WEB_THREADS + 8
    assert seen[0] - idle <= bound, f"{idle} threads idle, {seen[0]} with 100 clients waiting"


def _post_run(tmp_path: Path, key: str, **settings: str) -> httpx.Response:
    """One wait-mode run through a Daphne process with `settings` in its environment."""
    with serving_daphne(tmp_path / "daphne.log", **settings) as daphne:
        base = daphne.url.replace("ws://", "http://")
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{base}/api/v1/agents/oai/runs/", json={"input": "hello"}, headers=headers, timeout=30)


def test_a_wait_longer_than_the_limit_answers_202_with_where_to_follow_the_run(api, slow_model, tmp_path):
    response = _post_run(tmp_path, api.key, AGENTPLATFORM_RUN_WAIT_SECONDS="0.2")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] in ("queued", "running")
    assert response.headers["Location"] == f"/api/v1/runs/{body['id']}/"


def test_past_the_waiters_a_process_holds_the_run_is_answered_at_once_with_202(api, slow_model, tmp_path):
    response = _post_run(tmp_path, api.key, AGENTPLATFORM_MAX_WAITERS="0")

    assert response.status_code == 202
    run = Run.objects.get(pk=response.json()["id"])  # stored once, and executed
    assert Run.objects.count() == 1
    assert run.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.COMPLETED)


def _queue(owner, count: int, api_key: ApiKey | None = None) -> None:
    agent = Agent.objects.get(name="oai")
    session = Session.objects.create(owner=owner, agent=agent)
    Run.objects.bulk_create(
        [
            Run(session=session, agent=agent, owner=owner, api_key=api_key, status=RunStatus.QUEUED, input="x")
            for _ in range(count)
        ]
    )


@pytest.mark.parametrize("scope", ["deployment", "api_key"])
def test_past_the_queued_runs_limit_a_new_run_is_refused_with_503_and_nothing_is_written(make_api, settings, scope):
    # Given three runs waiting for a worker (of this key, or of anyone), and a limit of three
    api = make_api("carol")
    key = ApiKey.objects.get(user__username="carol")
    limit = "MAX_QUEUED_RUNS" if scope == "deployment" else "MAX_QUEUED_RUNS_PER_KEY"
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, limit: 3}
    _queue(key.user, 3, api_key=key if scope == "api_key" else None)
    runs, sessions = Run.objects.count(), Session.objects.count()

    # When the key asks for one more
    response = api.client.post(
        "/api/v1/agents/oai/runs/",
        {"input": "one more"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )

    # Then it is told to come back, and nothing was written
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("overloaded", {"queued_limit": 3, "scope": scope})
    assert (Run.objects.count(), Session.objects.count()) == (runs, sessions)


def test_a_run_waited_for_on_the_event_loop_is_answered_as_json(api, daphne):
    base = daphne.url.replace("ws://", "http://")
    headers = {"Authorization": f"Bearer {api.key}"}

    response = httpx.post(f"{base}/api/v1/agents/calc/runs/", json={"input": "1+1"}, headers=headers, timeout=30)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "completed"
