"""The trace waterfall in a real browser: headless Chromium (Playwright driving the system's
Chromium) against a live server. Staff signs in with a TOTP code, opens the trace list,
the run's trace and one of its spans, then the metrics dashboard. Screenshots go to $AGENTPLATFORM_ARTIFACTS_DIR (CI's
artifact directory) or tests/artifacts/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page

from tests.browser import artifacts_dir, chromium_page, sign_in
from tests.fakes.llm_server import Call, Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass"


@dataclass(frozen=True)
class Seen:
    rows: int
    bars: int
    opened: str
    bar_widths: list[float]
    run_link: str
    charts: int


def test_staff_opens_a_trace_waterfall_and_a_span_in_chromium(tracing_on, api, llm, live_server):
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "2+3?"})
    trace = tracing_on.trace_of(run["id"], {"agent.run", "tool.call", "chat gpt-test"})
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    # Playwright's sync API keeps an event loop in its thread, where Django refuses ORM calls.
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(_browse, live_server.url, device, trace.summary.trace_id).result(timeout=180)

    assert seen.rows >= 1
    assert seen.bars == len(trace.spans)
    assert "gen_ai.tool.name" in seen.opened
    assert "add" in seen.opened
    assert all(width > 0 for width in seen.bar_widths)
    assert seen.run_link.endswith(f"/admin/agents/run/{run['id']}/change/")
    assert seen.charts >= 5


def _browse(base_url: str, device: TOTPDevice, trace_id: str) -> Seen:
    with chromium_page(width=1400) as page:
        return _walk_through(page, base_url, device, trace_id)


def _walk_through(page: Page, base_url: str, device: TOTPDevice, trace_id: str) -> Seen:
    page.goto(f"{base_url}/admin/tracing/trace/")
    sign_in(page, "root", PASSWORD, device)
    page.wait_for_selector("#traces")
    rows = page.locator("#traces tbody tr").count()
    page.screenshot(path=str(artifacts_dir() / "tracing-trace-list.png"), full_page=True)

    page.click(f"a[href$='/admin/tracing/trace/{trace_id}/']")
    page.wait_for_selector("#waterfall")
    bars = page.locator("#waterfall .wf-bar")
    widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]  # type: ignore[index]
    tool_row = page.locator("#waterfall details.wf-row", has_text="tool.call").first
    tool_row.locator("summary").click()
    opened = tool_row.locator(".wf-detail").inner_text()
    page.screenshot(path=str(artifacts_dir() / "tracing-trace-waterfall.png"), full_page=True)
    run_link = page.locator("#trace-runs a.run-link").first.get_attribute("href") or ""
    bar_count = bars.count()

    page.goto(f"{base_url}/admin/tracing/metrics/")
    page.wait_for_selector("#metrics-cards")
    charts = page.locator("svg.chart").count()
    page.screenshot(path=str(artifacts_dir() / "tracing-metrics.png"), full_page=True)
    return Seen(rows, bar_count, opened, widths, run_link, charts)
