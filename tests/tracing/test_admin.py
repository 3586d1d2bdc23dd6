"""The trace viewer in the admin: the list with its filters, a trace's waterfall, the links
both ways with the run's page, and the metrics dashboard."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import signed_in_admin
from tests.fakes.llm_server import Call, Text, ToolCalls
from tracing.conf import tracing_settings

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass"


def sign_in(username: str, *, superuser: bool = True, permissions: tuple[str, ...] = ()) -> Client:
    users = get_user_model().objects
    if superuser:
        user = users.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = users.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="tracing", codename__in=permissions)
        )
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return signed_in_admin(user, device, PASSWORD)


@pytest.fixture
def traced_run(tracing_on, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "2+3?"})
    return run, tracing_on.trace_of(run["id"], {"agent.run", "tool.call", "chat gpt-test"})


def test_the_trace_list_shows_traces_newest_first_with_filters(traced_run):
    run, trace = traced_run
    staff = sign_in("root")

    index = staff.get("/admin/").content.decode()
    listed = staff.get("/admin/tracing/trace/").content.decode()
    by_agent = staff.get("/admin/tracing/trace/?agent=oai&status=completed").content.decode()
    errors_only = staff.get("/admin/tracing/trace/?errors=true").content.decode()
    bad = staff.get("/admin/tracing/trace/?from=yesterday")

    assert "/admin/tracing/trace/" in index
    assert "/admin/tracing/metrics/" in index
    assert f"/admin/tracing/trace/{trace.summary.trace_id}/" in listed
    assert f"/admin/agents/run/{run['id']}/change/" in listed
    assert trace.summary.trace_id in by_agent
    assert trace.summary.trace_id not in errors_only
    assert bad.status_code == 200
    assert "from: expected an ISO 8601 date or time" in bad.content.decode()


def test_a_trace_is_a_waterfall_linked_both_ways_with_its_run(traced_run):
    run, trace = traced_run
    staff = sign_in("root")

    run_page = staff.get(f"/admin/agents/run/{run['id']}/change/").content.decode()
    [to_traces] = re.findall(r"href='([^']+)' id='run-traces'", run_page)
    followed = staff.get(to_traces)
    detail = staff.get(followed["Location"]).content.decode()

    assert followed.status_code == 302
    assert followed["Location"] == f"/admin/tracing/trace/{trace.summary.trace_id}/"
    assert detail.count('class="wf-row"') == len(trace.spans)
    for span in trace.spans:
        assert f'id="span-{span.span_id}"' in detail
    assert f'href="/admin/agents/run/{run["id"]}/change/" class="run-link"' in detail
    assert "gen_ai.usage.input_tokens" in detail  # a span's attributes, shown when it is opened


def test_an_unknown_trace_is_a_404_and_a_staff_member_needs_the_permission(traced_run):
    _, trace = traced_run
    reader = sign_in("reader", superuser=False, permissions=("view_trace",))
    other = sign_in("other", superuser=False)

    assert reader.get(f"/admin/tracing/trace/{trace.summary.trace_id}/").status_code == 200
    assert reader.get("/admin/tracing/trace/0123456789abcdef0123456789abcdef/").status_code == 404
    assert reader.get("/admin/tracing/trace/not-hex/").status_code == 404
    assert reader.get("/admin/tracing/metrics/").status_code == 403
    assert other.get("/admin/tracing/trace/").status_code == 403


def test_the_metrics_dashboard_draws_its_charts(traced_run):
    staff = sign_in("root")

    page = staff.get("/admin/tracing/metrics/").content.decode()
    week = staff.get("/admin/tracing/metrics/?from=2026-01-01T00:00:00&to=2026-01-08T00:00:00&agent=oai")

    assert page.count("<svg") >= 5
    assert re.search(r"Runs<b>1</b>", page)
    assert "oai · gpt-test" in page
    assert "allow → ok" in page
    assert week.status_code == 200


def test_with_the_store_unreachable_the_pages_say_so(traced_run):
    staff = sign_in("root")
    unreachable = {**tracing_settings().__dict__, "CLICKHOUSE_URL": "http://127.0.0.1:9/"}

    with override_settings(TRACING=unreachable):
        listed = staff.get("/admin/tracing/trace/")
        dashboard = staff.get("/admin/tracing/metrics/")

    assert (listed.status_code, dashboard.status_code) == (200, 200)
    assert "ClickHouse is not reachable" in listed.content.decode()
    assert "ClickHouse is not reachable" in dashboard.content.decode()
