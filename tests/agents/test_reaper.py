"""Runs whose worker stopped renewing their lease are failed by the periodic reaper."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import tasks
from agents.models import Agent, Message, Run, RunEvent, Session
from tests import sample_agents
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until


def _running_run(owner, lease_in: timedelta) -> Run:
    session = Session.objects.create(owner=owner, agent=Agent.objects.get(name="calc"))
    run = Run.objects.create(
        session=session,
        agent=session.agent,
        owner=owner,
        status="running",
        input="1+1",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + lease_in,
    )
    Message.objects.create(session=session, run=run, position=0, role="user", content="1+1")
    return run


@pytest.mark.django_db
def test_a_run_whose_lease_expired_fails_with_a_clear_error(alice):
    lost = _running_run(alice, lease_in=timedelta(seconds=-5))
    alive = _running_run(alice, lease_in=timedelta(seconds=60))

    summary = tasks.reap_runs()

    assert summary == {"expired": 1, "reaped": 1, "requeued": 0}
    lost.refresh_from_db()
    assert lost.status == "failed"
    assert lost.error is not None
    assert lost.error["code"] == "worker_lost"
    assert lost.finished_at is not None
    assert list(RunEvent.objects.filter(run=lost).values_list("type", flat=True)) == ["run.failed"]
    assert Session.objects.get(pk=lost.session_id).message_count == 1
    alive.refresh_from_db()
    assert alive.status == "running"
    assert tasks.reap_runs() == {"expired": 0, "reaped": 0, "requeued": 0}


@pytest.mark.django_db(transaction=True)
def test_a_running_run_keeps_its_lease_renewed(api, llm, settings):
    # (a lease of 1 s: renewed every third of it, so that a pause of the worker under 0.6 s on a
    # busy machine costs no lease; with 0.3 s, a pause of 0.2 s failed this test in CI)
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "RUN_LEASE_SECONDS": 1.0}
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("done"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "wait", "background": True})
    try:
        wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)
        time.sleep(3.5)  # over three lease lengths inside one tool call: only renewals keep it

        assert tasks.reap_runs()["reaped"] == 0
    finally:
        sample_agents.GATE.set()
    wait_until(lambda: Run.objects.get(pk=run["id"]).status != "running")
    assert Run.objects.get(pk=run["id"]).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_a_queued_run_nothing_took_is_handed_to_a_worker_again(api, alice):
    # Given a queued run whose task the broker lost (created here without one)
    session = Session.objects.create(owner=alice, agent=Agent.objects.get(name="calc"))
    long_ago = timezone.now() - timedelta(minutes=10)
    lost = Run.objects.create(
        session=session, agent=session.agent, owner=alice, status="queued", input="2+5", enqueued_at=long_ago
    )
    later = Run.objects.create(
        session=session, agent=session.agent, owner=alice, status="queued", input="1+1", enqueued_at=long_ago
    )

    # When the periodic task runs: only the session's first queued run can start, so only it is sent
    summary = tasks.reap_runs()

    # Then a worker executes it, and the one behind it follows
    assert summary == {"expired": 0, "reaped": 0, "requeued": 1}
    wait_until(lambda: Run.objects.get(pk=later.pk).status == "completed")
    assert Run.objects.get(pk=lost.pk).output == "7 (and tool_denied)"
