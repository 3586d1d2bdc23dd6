"""The admin inbox at 10, 100 and 10,000 pending approval requests.

A reviewer signs in to the admin (password and TOTP code, through the real login form);
pending requests are copied with SQL from one real paused run's request. Then the inbox
(`/admin/approvals/approvalrequest/`: pending first, then newest; one page of 50) and the
admin index (with its pending count) are timed. The sizes go 10, 100, 10,000, 100, 10 so
that drift over the measurement affects them alike; each size's samples are pooled.
"""

from __future__ import annotations

import base64
import http.client
import re
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg
from django_otp.oath import totp
from psycopg.types.json import Jsonb

from bench.load import Client, percentile
from bench.stack import PYTHON, ROOT, Stack

SIZES = (10, 100, 10_000)
PAGE = 50  # the inbox's list_per_page
SCHEDULE = (10, 100, 10_000, 100, 10)
INBOX = "/admin/approvals/approvalrequest/"
PAGES = {"inbox": INBOX, "inbox, pending only": f"{INBOX}?status__exact=pending", "admin index": "/admin/"}
PASSWORD = "bench-admin-password"
COLUMNS = (
    "id, run_id, session_id, agent_id, owner_id, call_id, tool_name, arguments, arguments_hash, parameters, "
    "status, requested_at, expires_at, expiry_action, approved_hash, diff, reason, comment, channel"
)


class AdminSession:
    """A signed-in admin over one keep-alive connection, carrying its cookies."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, text

    def sign_in(self, username: str, secret: bytes) -> None:
        _, page = self.request("GET", "/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("no CSRF token on the login page")
        form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": PASSWORD}
        form["otp_token"] = f"{totp(secret):06d}"
        status, page = self.request("POST", "/admin/login/?next=/admin/", form)
        if status != 302:
            raise RuntimeError(f"admin sign-in failed: HTTP {status}")

    def close(self) -> None:
        self.connection.close()


def create_admin(env: dict[str, str]) -> tuple[str, bytes]:
    """An admin login; its username and TOTP secret (from the provisioning URI it prints)."""
    argv = [PYTHON, "manage.py", "create_admin", "--username", "bench-admin", "--password", PASSWORD, "--no-qr"]
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout  # our command
    uri = re.search(r"otpauth://\S+", out)
    if uri is None:
        raise RuntimeError("create_admin printed no provisioning URI")
    secret = parse_qs(urlsplit(uri.group()).query)["secret"][0]
    return "bench-admin", base64.b32decode(secret + "=" * (-len(secret) % 8))


class Seeder:
    """Keeps exactly N pending requests: one real one and N-1 SQL copies of it."""

    def __init__(self, database_url: str, approval_id: str) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        row = self.conn.execute(
            "SELECT run_id, session_id, agent_id, owner_id, tool_name, arguments, parameters, expiry_action "
            "FROM approvals_approvalrequest WHERE id = %s",
            (approval_id,),
        ).fetchone()
        if row is None:
            raise RuntimeError(f"no approval request {approval_id}")
        self.template, self.copies = row, 0

    def pending(self, total: int) -> None:
        wanted = total - 1
        if wanted > self.copies:
            self._insert(self.copies, wanted)
        elif wanted < self.copies:
            surplus = (
                "DELETE FROM approvals_approvalrequest WHERE call_id LIKE 'seed-%%' AND substr(call_id, 6)::int >= %s"
            )
            self.conn.execute(surplus, (wanted,))
        self.copies = wanted
        self.conn.execute("VACUUM ANALYZE approvals_approvalrequest")  # as autovacuum would leave it

    def _insert(self, first: int, end: int) -> None:
        run_id, session_id, agent_id, owner_id, tool, arguments, parameters, action = self.template
        now = datetime.now(UTC)
        with self.conn.cursor().copy(f"COPY approvals_approvalrequest ({COLUMNS}) FROM STDIN") as copy:
            for n in range(first, end):
                requested = now - timedelta(seconds=n + 10)  # older than the real one
                expires = now + timedelta(days=1)
                copy.write_row((uuid.uuid4(), run_id, session_id, agent_id, owner_id, f"seed-{n}", tool,
                                Jsonb(arguments), "0" * 64, Jsonb(parameters),
                                "pending", requested, expires, action, "", "[]", "", "", ""))  # fmt: skip

    def counts(self) -> tuple[int, int]:
        """(pending, all) requests."""
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FROM approvals_approvalrequest"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def close(self) -> None:
        self.conn.close()


@dataclass
class PageTimings:
    ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")


@dataclass
class InboxResults:
    timings: dict[tuple[str, int], PageTimings]  # (page, pending requests)
    total_requests: dict[int, int]  # pending -> all requests at that size


def _check(page: str, html: str, pending: int, total: int) -> str | None:
    expected = {
        "inbox": f"{total} approval requests",
        "inbox, pending only": f"{pending} approval requests",
        "admin index": f'id="pending-approvals-count">{pending}</strong>',
    }[page]
    return None if expected in html else f"{page}: expected {expected!r}"


def _time_pages(session: AdminSession, seeder: Seeder, samples: int, results: InboxResults) -> None:
    pending, total = seeder.counts()
    results.total_requests[pending] = total
    for _ in range(3):  # warm-up
        for path in PAGES.values():
            session.request("GET", path)
    for _ in range(samples):
        for page, path in PAGES.items():
            timing = results.timings.setdefault((page, pending), PageTimings())
            start = time.perf_counter()
            status, html = session.request("GET", path)
            elapsed = (time.perf_counter() - start) * 1000
            error = f"HTTP {status}" if status != 200 else _check(page, html, pending, total)
            if error is None:
                timing.ms.append(elapsed)
            else:
                timing.errors.append(error)


def _paused_request(base_url: str, api_key: str) -> str:
    client = Client(base_url, api_key)
    try:
        status, run = client.request("POST", "/api/v1/agents/bench-approve/runs/", {"input": "Send the report."})
        if status != 202:
            raise RuntimeError(f"expected a paused run: HTTP {status}")
        _, page = client.request("GET", "/api/v1/approvals/?status=pending")
        return next(str(a["id"]) for a in page["results"] if a["run_id"] == run["id"])
    finally:
        client.close()


def measure_inbox(stack: Stack, api_key: str, samples: int) -> InboxResults:
    seeder = Seeder(stack.database_url, _paused_request(stack.base_url, api_key))
    session = AdminSession(stack.base_url)
    results = InboxResults({}, {})
    try:
        session.sign_in(*create_admin(stack.env))
        visits = {size: SCHEDULE.count(size) for size in SIZES}
        for size in SCHEDULE:
            seeder.pending(size)
            _time_pages(session, seeder, max(1, samples // visits[size]), results)
    finally:
        session.close()
        seeder.close()
    return results


def _ratio(results: InboxResults, page: str, large: int, small: int) -> float:
    return results.timings[(page, large)].median / results.timings[(page, small)].median


def render_inbox(results: InboxResults) -> list[str]:
    lines = [
        "",
        "### Approvals inbox in the admin: 10 vs 10,000 pending requests",
        "",
        (
            "A signed-in reviewer (password + TOTP) loads each page; pending requests are SQL copies of a real one "
            "(sizes visited 10, 100, 10,000, 100, 10; samples pooled per size). The inbox shows one page of 50, "
            "pending first then newest."
        ),
        "",
        "| Page | Pending | All requests | Rows shown | Requests | median ms | p99 ms | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for page, pending in sorted(results.timings, key=lambda key: (list(PAGES).index(key[0]), key[1])):
        timing = results.timings[(page, pending)]
        count = len(timing.ms) + len(timing.errors)
        p99 = percentile(timing.ms, 99) if timing.ms else float("nan")
        total = results.total_requests[pending]
        rows = {"inbox": min(PAGE, total), "inbox, pending only": min(PAGE, pending)}.get(page, 0)
        lines.append(
            f"| {page} | {pending:,} | {total:,} | {rows or '-'} | {count} | {timing.median:.2f} | "
            f"{p99:.2f} | {len(timing.errors)} / {count} |"
        )
    lines.append("")
    for page in PAGES:
        vs_10, vs_100 = _ratio(results, page, 10_000, 10), _ratio(results, page, 10_000, 100)
        lines.append(f"- {page}: median at 10,000 vs 10 pending **{vs_10:.2f}x**, 10,000 vs 100 **{vs_100:.2f}x**.")
    lines.append("")
    lines.append(
        "Compare pages that show as many rows: filtered to pending, the page at 10 pending lists 10 rows and the "
        "others 50, so its ratio to 10 measures rendering 40 more rows, not the table's size."
    )
    return lines
