"""The approvals inbox in a real browser: headless Chromium (Playwright driving the system's
Chromium) against a real Daphne on the test database. A reviewer signs in with a TOTP code,
opens the pending request of a paused run, edits its arguments and approves; the run then
completes with the edited arguments. Screenshots go to $AGENTPLATFORM_ARTIFACTS_DIR (CI's
artifact directory) or tests/artifacts/, named after the database (sqlite-..., postgresql-...)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page

from tests import sample_agents
from tests.approvals.conftest import DECIDE, PASSWORD, VIEW, create_staff, finished, pause
from tests.browser import artifacts_dir, chromium_page, sign_in
from tests.fakes.llm_server import Text

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EDITED = {"to": "carol@example.com", "subject": "hi from the inbox"}


@dataclass(frozen=True)
class Seen:
    """What the reviewer's browser showed."""

    banner: str
    editor_before: str
    message: str
    decided_status: str
    stylesheet_status: int


def test_a_reviewer_signs_in_with_totp_edits_the_arguments_and_approves_in_chromium(daphne, api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent to carol."))
    user, device = create_staff("reviewer", VIEW, DECIDE)
    base_url = daphne.url.replace("ws://", "http://", 1)

    # The browser runs in its own thread: Playwright's sync API keeps an event loop in the
    # thread that drives it, where Django refuses ORM calls; the test's ORM calls stay here.
    with ThreadPoolExecutor(1) as pool:
        review = pool.submit(_review, base_url, user.get_username(), device, str(approval.pk), connection.vendor)
        seen = review.result(timeout=180)

    assert "1 tool call" in seen.banner
    assert json.loads(seen.editor_before) == approval.arguments
    assert seen.message.startswith("Approved send_email with edits to /subject, /to")
    assert seen.decided_status == "Approved"
    assert seen.stylesheet_status == 200  # the admin's CSS, served by WhiteNoise under Daphne
    run = finished(approval.run_id)
    assert (run.status, run.output) == ("completed", "Sent to carol.")
    assert sample_agents.CALLS == [("send_email", EDITED)]  # the tool ran with the edited arguments
    approval.refresh_from_db()
    assert (approval.approved_arguments, approval.channel, approval.decided_by) == (EDITED, "admin", user)
    assert approval.executed_at is not None


def _review(base_url: str, username: str, device: TOTPDevice, approval_id: str, database: str) -> Seen:
    with chromium_page() as page:
        return _walk_through(page, base_url, (username, device), approval_id, artifacts_dir() / database)


def _walk_through(
    page: Page, base_url: str, login: tuple[str, TOTPDevice], approval_id: str, screenshots: Path
) -> Seen:
    """Sign in, open the inbox and the request, edit, approve; screenshots named after the database."""
    username, device = login
    page.goto(f"{base_url}/admin/")
    assert "/admin/login/" in page.url
    sign_in(page, username, PASSWORD, device)
    page.wait_for_url(f"{base_url}/admin/")
    banner = page.inner_text("#pending-approvals")
    stylesheet = page.request.get(f"{base_url}/static/admin/css/base.css")

    page.click("#pending-approvals a")  # the inbox, pending requests
    page.screenshot(path=f"{screenshots}-approvals-inbox-list.png", full_page=True)
    page.click(f"#result_list a[href*='/approvalrequest/{approval_id}/change/']")
    page.wait_for_selector("#decision-form")
    editor_before = page.input_value("#id_arguments")
    page.fill("#id_arguments", json.dumps(EDITED, indent=2))
    page.screenshot(path=f"{screenshots}-approvals-inbox-detail.png", full_page=True)

    page.click("#approve-edited")
    page.wait_for_selector("ul.messagelist li.success")
    message = page.inner_text("ul.messagelist li.success")
    decided_status = page.inner_text(".field-status .readonly")
    page.screenshot(path=f"{screenshots}-approvals-inbox-decided.png", full_page=True)
    return Seen(banner, editor_before, message, decided_status, stylesheet.status)
