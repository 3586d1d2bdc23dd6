"""Signing in to the admin: one step, one answer for any failure, and a lockout (django-axes)
after too many failures per username and per address, lifted by its cool-off or by an admin."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.signin import FAILED, client_ip
from tests.conftest import Api
from tests.factories import create_api_key, create_user, signed_in_admin, totp_code

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3cret-pass"
LOGIN = "/admin/login/?next=/admin/"
LOCKED = "Sign-in is locked: too many failed attempts"


@pytest.fixture
def root(db: None) -> tuple[Any, TOTPDevice]:
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.fixture
def limit(settings: Any) -> int:
    """Three failures lock out (the default is five)."""
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_FAILURES": 3}
    return 3


def _sign_in(username: str, password: str, code: str, address: str = "127.0.0.1") -> Any:
    client = Client(REMOTE_ADDR=address)
    return client.post(LOGIN, {"username": username, "password": password, "otp_token": code})


def _page(response: Any) -> str:
    """The page without what differs between any two renderings (the CSRF token, the username typed)."""
    page = response.content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)
    return re.sub(r'(name="username"[^>]*?) value="[^"]*"', r"\1", page)


def test_the_login_form_asks_for_the_code_at_once_and_signs_in_in_one_step(root):
    _, device = root

    form = Client().get(LOGIN).content.decode()
    signed_in = _sign_in("root", PASSWORD, totp_code(device))

    assert 'name="otp_token"' in form
    assert "otp_device" not in form
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/admin/")


def test_with_several_authenticators_the_code_of_any_confirmed_one_signs_in(root):
    user, _ = root
    spare = TOTPDevice.objects.create(user=user, name="spare phone", confirmed=True)
    unconfirmed = TOTPDevice.objects.create(user=user, name="not set up yet", confirmed=False)

    signed_in = _sign_in("root", PASSWORD, totp_code(spare))
    refused = _sign_in("root", PASSWORD, totp_code(unconfirmed))

    assert refused.status_code == 200
    assert signed_in.status_code == 302
    spare.refresh_from_db()
    assert spare.last_used_at is not None


def test_a_wrong_password_and_a_wrong_or_missing_code_get_the_same_page(root, settings):
    _, device = root
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_FAILURES": 100}
    not_staff = create_user("plain")
    plain_device = TOTPDevice.objects.create(user=not_staff, name="phone", confirmed=True)

    wrong_password = _sign_in("root", "not-it", totp_code(device))
    attempts = [
        _sign_in("root", PASSWORD, "000000"),  # the right password, a wrong code
        _sign_in("root", PASSWORD, ""),  # the right password, no code
        _sign_in("root", PASSWORD, "not a code"),
        _sign_in("nobody", PASSWORD, "123456"),  # no such user
        _sign_in("plain", "pw-for-tests", totp_code(plain_device)),  # not staff: its right password and code
    ]

    assert wrong_password.status_code == 200
    assert FAILED.replace("'", "&#x27;") in wrong_password.content.decode()
    for response in attempts:
        assert response.status_code == 200
        assert _page(response) == _page(wrong_password)
    assert not AccessLog.objects.exists()  # nobody signed in


def test_every_kind_of_failure_counts_and_the_limit_locks_the_user_out(root, limit):
    _, device = root

    failures = [
        _sign_in("root", "not-it", totp_code(device)),
        _sign_in("root", PASSWORD, "000000"),
        _sign_in("root", PASSWORD, ""),
    ]
    right = _sign_in("root", PASSWORD, totp_code(device))

    assert [r.status_code for r in failures] == [200, 200, 429]  # the third failure locks out at once
    assert LOCKED in failures[-1].content.decode()
    assert right.status_code == 429  # even the right password and code, while locked out
    assert LOCKED in right.content.decode()
    assert "Try again in 0:15:00" in right.content.decode()
    assert AccessFailureLog.objects.filter(username="root").count() == 3  # every failure is logged
    assert AccessFailureLog.objects.filter(username="root", locked_out=True).exists()
    assert not AccessLog.objects.exists()


def test_the_lockout_is_per_username_from_any_address(root, limit):
    _, device = root
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        _sign_in("root", "not-it", "000000", address)

    assert _sign_in("root", PASSWORD, totp_code(device), "10.0.0.4").status_code == 429
    assert _sign_in("alice", "whatever", "000000", "10.0.0.4").status_code == 200  # another user there is not


def test_the_lockout_is_per_address_for_any_username(root, limit):
    _, device = root
    for username in ("admin", "administrator", "staff"):
        _sign_in(username, "guess", "000000", "10.0.0.9")

    assert _sign_in("root", PASSWORD, totp_code(device), "10.0.0.9").status_code == 429
    assert _sign_in("root", PASSWORD, totp_code(device), "10.0.0.10").status_code == 302


def test_the_lockout_ends_after_its_cool_off(root, limit):
    _, device = root
    for _ in range(3):
        _sign_in("root", "not-it", "000000")
    assert _sign_in("root", PASSWORD, totp_code(device)).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))  # 15 minutes by default

    assert _sign_in("root", PASSWORD, totp_code(device)).status_code == 302
    assert not AccessAttempt.objects.exists()  # a sign-in clears the count


def test_an_admin_unlocks_a_locked_out_user(root, limit):
    _, device = root
    other = get_user_model().objects.create_superuser("second", "second@example.com", PASSWORD)
    unlocker = signed_in_admin(other, TOTPDevice.objects.create(user=other, name="phone", confirmed=True), PASSWORD)
    for _ in range(3):
        _sign_in("root", "not-it", "000000", "10.0.0.5")
    assert _sign_in("root", PASSWORD, totp_code(device), "10.0.0.6").status_code == 429

    listed = unlocker.get("/admin/axes/accessattempt/")
    [attempt] = AccessAttempt.objects.all()
    unlocked = unlocker.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    )

    assert listed.status_code == 200
    assert "root" in listed.content.decode()
    assert unlocked.status_code == 302
    assert _sign_in("root", PASSWORD, totp_code(device), "10.0.0.6").status_code == 302


def test_api_keys_are_neither_counted_nor_throttled(root, limit, alice):
    _, key = create_api_key(alice)
    for _ in range(3):
        _sign_in("root", "not-it", "000000")  # this address is now locked out of the admin
    assert _sign_in("root", PASSWORD, totp_code(root[1])).status_code == 429

    bad = [Api(f"ap_not-a-key-{n}").get("/api/v1/agents/")[0] for n in range(10)]
    good = Api(key).get("/api/v1/agents/")[0]

    assert set(bad) == {401}
    assert good == 200
    assert AccessAttempt.objects.count() == 1  # only the admin sign-ins


@pytest.mark.parametrize(
    ("proxies", "forwarded", "address"),
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no trusted proxy: the header is anyone's to write
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # what the one proxy saw, not what the client claimed
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "10.0.0.1"),  # fewer entries than proxies: the connection's address
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded, address):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "ADMIN_LOCKOUT_TRUSTED_PROXIES": proxies}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == address
