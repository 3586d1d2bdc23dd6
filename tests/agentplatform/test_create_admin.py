"""`create_admin` prints a TOTP provisioning URI and draws it as a QR code in the terminal."""

from __future__ import annotations

import base64
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.approvals.conftest import PASSWORD, create_staff, sign_in

BORDER = 4  # the quiet zone the QR standard asks for, in modules
HALF_BLOCKS = {" ": (1, 1), "▀": (0, 1), "▄": (1, 0), "█": (0, 0)}  # (top, bottom); 1: a dark module


def _create_admin(*args: str) -> str:
    out = io.StringIO()
    call_command("create_admin", "--username", "ops", "--password", "a-long-password", *args, stdout=out)
    return out.getvalue()


def _drawn_modules(lines: list[str]) -> list[list[int]]:
    """The modules a terminal shows: two rows per line of half blocks."""
    rows: list[list[int]] = []
    for line in lines:
        pairs = [HALF_BLOCKS[char] for char in line]
        rows += [[top for top, _ in pairs], [bottom for _, bottom in pairs]]
    return rows


def _with_quiet_zone(matrix: tuple[bytearray, ...]) -> list[list[int]]:
    width = len(matrix[0]) + 2 * BORDER
    light = [[0] * width for _ in range(BORDER)]
    return light + [[0] * BORDER + list(row) + [0] * BORDER for row in matrix] + light


@pytest.mark.django_db
def test_the_qr_code_encodes_the_printed_provisioning_uri():
    out = _create_admin()

    uri = re.search(r"otpauth://totp/\S+", out)
    assert uri is not None
    device = TOTPDevice.objects.get(user__username="ops")
    assert parse_qs(urlsplit(uri.group()).query)["secret"] == [base64.b32encode(device.bin_key).decode()]
    drawing = out.split("Or scan this QR code (the same URI):\n", 1)[1].splitlines()
    expected = _with_quiet_zone(segno.make_qr(uri.group()).matrix)
    drawn = _drawn_modules(drawing)
    assert drawn[: len(expected)] == expected
    assert drawn[len(expected) :] in ([], [[1] * len(expected[0])])  # an odd height pads one blank row


@pytest.mark.django_db
def test_no_qr_prints_the_uri_only():
    out = _create_admin("--no-qr")

    assert "otpauth://totp/" in out
    assert "█" not in out


@pytest.mark.django_db
def test_the_totp_device_admin_draws_a_new_reviewers_qr_code_too(admin_user):
    admin_user.set_password(PASSWORD)
    admin_user.save()
    client = sign_in(admin_user, TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True))
    reviewer = TOTPDevice.objects.create(user=create_staff("newcomer")[0], name="phone-2", confirmed=True)

    response = client.get(f"/admin/otp_totp/totpdevice/{reviewer.pk}/qrcode/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
