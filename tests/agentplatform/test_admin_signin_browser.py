"""The admin's sign-in in headless Chromium against a real Daphne: a wrong password and a wrong
code look the same, and the failure that reaches the limit shows the lockout page."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page

from tests.browser import artifacts_dir, chromium_page
from tests.conftest import serving_daphne
from tests.factories import totp_code

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass"


@dataclass(frozen=True)
class Attempt:
    """What the browser showed after one failed sign-in."""

    status: int
    error: str
    fields: list[str]


def test_a_wrong_password_and_a_wrong_code_look_the_same_and_the_limit_locks_out(tmp_path: Path) -> None:
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    with serving_daphne(tmp_path / "daphne.log", AGENTPLATFORM_ADMIN_LOCKOUT_FAILURES="3") as daphne:
        base_url = daphne.url.replace("ws://", "http://", 1)
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API in its own thread (tests/browser.py)
            seen = pool.submit(_attempts, base_url, device, artifacts_dir() / connection.vendor).result(timeout=180)

    wrong_password, wrong_code, locked = seen
    assert wrong_password.status == 200
    assert wrong_password.error.startswith("Please enter the correct username, password and authentication code")
    assert wrong_code == wrong_password  # same message, same form: nothing says the password was right
    assert wrong_password.fields == ["username", "password", "otp_token"]
    assert locked.status == 429
    assert locked.error.startswith("Sign-in is locked: too many failed attempts (3)")


def _attempts(base_url: str, device: TOTPDevice, screenshots: Path) -> list[Attempt]:
    with chromium_page() as page:
        page.goto(f"{base_url}/admin/")
        return [
            _attempt(page, "not-the-password", totp_code(device)),
            _attempt(page, PASSWORD, "000000"),
            _attempt(page, PASSWORD, "000000", screenshot=f"{screenshots}-admin-signin-locked.png"),
        ]


def _attempt(page: Page, password: str, code: str, screenshot: str = "") -> Attempt:
    page.fill("#id_username", "root")
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    with page.expect_navigation() as navigation:
        page.click("input[type=submit]")
    response: Any = navigation.value
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    error = page.locator("p.errornote").first.inner_text().strip()
    fields = page.eval_on_selector_all(
        "#login-form input:not([type=hidden]):not([type=submit])", "inputs => inputs.map(i => i.name)"
    )
    return Attempt(response.status, error, fields)
