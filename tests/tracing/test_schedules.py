"""A schedule's firing starts a trace (beat sends it without one), and the run it starts is
in that trace."""

from __future__ import annotations

import pytest

from agentplatform.celery import Queue, TaskName, app
from agents.models import Run
from tests.infra import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_scheduled_run_is_in_the_trace_of_its_firing(tracing_on, api):
    status, schedule = api.post(
        "/api/v1/schedules/", {"name": "brief", "agent": "demo", "input": "Weather in Oslo?", "interval_seconds": 3600}
    )
    assert status == 201, schedule

    # Beat sends the firing with no trace context; the worker starts one
    app.send_task(TaskName.FIRE_SCHEDULE, args=[schedule["id"]], queue=Queue.SCHEDULES)
    wait_until(lambda: Run.objects.filter(schedule_id=schedule["id"], status="completed").exists(), timeout=30)
    run = Run.objects.get(schedule_id=schedule["id"])
    trace = tracing_on.trace_of(str(run.pk), {"celery.task agents.fire_schedule", "agent.run", "tool.call"})

    firing = next(span for span in trace.spans if span.name == "celery.task agents.fire_schedule")
    task = next(span for span in trace.spans if span.name == "celery.task agents.execute_run")
    assert (firing.parent_span_id, firing.depth) == ("", 0)
    assert task.parent_span_id == firing.span_id
    assert trace.summary.root_name == "celery.task agents.fire_schedule"
    assert trace.summary.agents == ["demo"]
