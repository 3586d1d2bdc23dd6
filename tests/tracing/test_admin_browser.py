"""The trace waterfall in a real browser: headless Chromium (Playwright driving the system's
Chromium) against a live server. Staff signs in with a TOTP code, opens the trace list,
the run's trace and one of its spans, then the metrics dashboard. Screenshots go to $AGENTPLATFORM_ARTIFACTS_DIR (CI's
artifact directory) or tests/artifacts/."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, sync_playwright

from tests.conftest import ROOT
from tests.fakes.llm_server import Call, Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never `playwright install`
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "s3cret-pass"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("AGENTPLATFORM_ARTIFACTS_DIR") or ROOT / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"

    # Playwright's sync API keeps an event loop in its thread, where Django refuses ORM calls.
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(_browse, live_server.url, code, trace.summary.trace_id).result(timeout=180)

    assert seen.rows >= 1
    assert seen.bars == len(trace.spans)
    assert "gen_ai.tool.name" in seen.opened
    assert "add" in seen.opened
    assert all(width > 0 for width in seen.bar_widths)
    assert seen.run_link.endswith(f"/admin/agents/run/{run['id']}/change/")
    assert seen.charts >= 5


def _browse(base_url: str, code: str, trace_id: str) -> Seen:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            return _walk_through(page, base_url, code, trace_id)
        finally:
            browser.close()


def _walk_through(page: Page, base_url: str, code: str, trace_id: str) -> Seen:
    page.goto(f"{base_url}/admin/tracing/trace/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", code)
    page.click("input[type=submit]")
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
