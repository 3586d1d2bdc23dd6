"""Headless Chromium for the browser tests: Debian's package driven by Playwright (whose own
browser download is never used; scripts/test installs Chromium when missing), the admin's
TOTP sign-in, and where screenshots go ($AGENTPLATFORM_ARTIFACTS_DIR, CI's artifact
directory, or tests/artifacts/)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, sync_playwright

from tests.factories import totp_code

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
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


def artifacts_dir() -> Path:
    path = Path(os.environ.get("AGENTPLATFORM_ARTIFACTS_DIR") or ROOT / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 1000) -> Iterator[Page]:
    """A page in a fresh headless Chromium. Playwright's sync API keeps an event loop in the
    thread that drives it, where Django refuses ORM calls: drive it from another thread."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def sign_in(page: Page, username: str, password: str, device: TOTPDevice) -> None:
    """Fill and submit the admin's login form: username, password and TOTP code, in one step."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", totp_code(device))
    page.click("input[type=submit]")
