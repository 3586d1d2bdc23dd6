"""Signed webhooks: registration (SSRF guard), the outbox, signatures, retries, resend, admin."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from agentplatform.errors import InvalidInput
from agents.models import Run
from approvals import services, webhook_signing, webhook_transport, webhooks
from approvals.models import ApprovalRequest, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.conftest import Api
from tests.factories import SETUP, create_api_key, create_user
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOKS_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "webhooks.md"
EMAIL = {"to": "bob@example.com", "subject": "hi"}
ALL_EVENTS = list(WebhookEvent.values)


def _documented_verify() -> Any:
    """The webhooks guide's verification snippet, run as documented."""
    section = WEBHOOKS_GUIDE.read_text().split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code, "the webhooks guide has no Python snippet under 'Verifying a delivery'"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "webhooks.md", "exec"), namespace)  # our own docs
    return namespace["verify"]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local endpoint: a threaded http.server on a free port. It answers each POST with
    the next scripted reply (a status code, or "hang": no answer until released), then 200."""

    server: ThreadingHTTPServer
    url: str = ""
    certificate: Path | None = None  # a TLS receiver's (self-signed)
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, request: Received) -> int | str:
        self.received.append(request)
        return self.script.pop(0) if self.script else 200


@contextlib.contextmanager
def _serving(host: str, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = state["r"].answer(Received(dict(self.headers.items()), body))
            if reply == "hang":
                state["r"].release.wait(timeout=30)
                return  # closes without an answer
            self.send_response(int(reply))
            self.end_headers()
            self.wfile.write(b"thanks" if reply == 200 else b"boom")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.block_on_close = True  # server_close() waits for the handler threads
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    state["r"] = Receiver(server, f"{scheme}://{host}:{server.server_address[1]}/hooks/agentplatform?team=1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serving("127.0.0.1") as receiver:
        yield receiver


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[Receiver]:
    """An https endpoint at `localhost`, with a self-signed certificate for that name."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = timezone.now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with _serving("localhost", tls) as receiver:
        receiver.certificate = tmp_path / "cert.pem"
        yield receiver


@pytest.fixture
def quick(settings: Any) -> Any:
    """Private addresses allowed (the receiver is on loopback), short timeout and backoff."""
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        "WEBHOOKS_ALLOW_PRIVATE": True,
        "WEBHOOK_TIMEOUT": 1.0,
        "WEBHOOK_RETRY_BASE": 0.05,
        "WEBHOOK_RETRY_MAX": 0.2,
        "WEBHOOK_MAX_ATTEMPTS": 4,
    }
    return settings


@pytest.fixture
def manager(alice: Any, celery_worker: None) -> Api:
    """Alice's key that may manage webhooks and decide on her own runs."""
    return Api(create_api_key(alice, scopes=["webhooks:manage", "approvals:decide"])[1])


def _register(manager: Api, url: str, events: list[str] | None = None) -> dict[str, Any]:
    status, endpoint = manager.post("/api/v1/webhooks/", {"url": url, "event_types": events or ALL_EVENTS})
    assert status == 201, endpoint
    return endpoint


def _settled(endpoint_id: Any, count: int = 1) -> list[WebhookDelivery]:
    """The endpoint's deliveries once `count` exist and none is pending or in flight."""

    def done() -> bool:
        rows = WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
        return rows.count() >= count and not rows.filter(status="pending").exists()

    wait_until(done, timeout=30)
    return list(WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("created_at"))


def _attempts(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(delivery.attempts.order_by("number"))


def test_a_paused_then_approved_run_sends_signed_approval_and_run_events(api, manager, receiver, quick, llm):
    endpoint = _register(manager, receiver.url)
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    assert run["status"] == "awaiting_approval"
    _, page = api.get("/api/v1/approvals/?status=pending")
    [approval] = page["results"]
    llm.enqueue(Text("Sent."))

    assert manager.post(f"/api/v1/approvals/{approval['id']}/approve", {"comment": "bob expects it"})[0] == 200
    wait_until(lambda: Run.objects.get(pk=run["id"]).status == "completed", 30)

    deliveries = _settled(endpoint["id"], count=3)
    assert [d.event_type for d in deliveries] == ["approval.requested", "approval.decided", "run.completed"]
    assert {d.status for d in deliveries} == {"delivered"}
    verify = _documented_verify()
    bodies = []
    for request in sorted(receiver.received, key=lambda r: json.loads(r.body)["created_at"]):
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert verify(endpoint["secret"], request.body, headers["x-agentplatform-signature"])
        assert not verify("whsec_another", request.body, headers["x-agentplatform-signature"])
        assert not verify(endpoint["secret"], request.body + b" ", headers["x-agentplatform-signature"])
        body = json.loads(request.body)
        assert headers["x-agentplatform-event"] == body["type"]
        assert headers["x-agentplatform-delivery"] in {str(d.pk) for d in deliveries}
        assert set(body) == {"id", "type", "created_at", "data"}
        bodies.append(body)
    requested, decided, completed = bodies
    assert (requested["data"]["id"], requested["data"]["tool"], requested["data"]["status"]) == (
        approval["id"],
        "send_email",
        "pending",
    )
    assert (decided["data"]["status"], decided["data"]["decided_by"], decided["data"]["run_id"]) == (
        "approved",
        "alice",
        run["id"],
    )
    assert (requested["data"]["comment"], decided["data"]["comment"]) == ("", "bob expects it")
    assert completed["data"]["run_id"] == run["id"]
    assert (completed["data"]["status"], completed["data"]["output"], completed["data"]["agent"]) == (
        "completed",
        "Sent.",
        "oai",
    )
    _, listed = manager.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/")
    assert [(d["event_type"], d["attempts"][0]["status_code"]) for d in listed["results"]] == [
        ("run.completed", 200),
        ("approval.decided", 200),
        ("approval.requested", 200),
    ]


def test_a_stale_signature_is_refused_by_the_documented_check():
    verify = _documented_verify()
    secret, body = "whsec_test-secret-123", b'{"id":"1"}'
    header = webhook_signing.signature(secret, 1_000_000, body)

    assert verify(secret, body, header, now=1_000_000 + 299)
    assert not verify(secret, body, header, now=1_000_000 + 301)  # a replay, five minutes on
    assert not verify(secret, body, "t=1000000")
    assert not verify(secret, body, "garbage")


def test_a_failing_endpoint_is_retried_with_backoff_until_it_succeeds(api, manager, receiver, quick):
    receiver.script = [500, "hang", 200]  # an error, then a timeout, then a success
    endpoint = _register(manager, receiver.url, ["run.completed"])

    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+3"})
    assert run["status"] == "completed"

    [delivery] = _settled(endpoint["id"])
    assert (delivery.status, delivery.attempt_count) == ("delivered", 3)
    attempts = _attempts(delivery)
    assert [(a.number, a.trigger, a.status_code) for a in attempts] == [
        (1, "automatic", 500),
        (2, "automatic", None),
        (3, "automatic", 200),
    ]
    assert [a.error for a in attempts] == ["HTTP 500", "Timed out after 1 s.", ""]
    assert attempts[0].response_excerpt == "boom"
    assert all(a.latency_ms is not None for a in attempts)
    assert len({r.body for r in receiver.received}) == 1  # the same body every time
    assert [r.headers["X-Agentplatform-Attempt"] for r in receiver.received] == ["1", "2", "3"]
    assert {r.headers["X-Agentplatform-Delivery"] for r in receiver.received} == {str(delivery.pk)}


def test_a_delivery_gives_up_after_the_last_attempt(api, manager, receiver, quick):
    receiver.script = [503, 503, 503, 503]
    endpoint = _register(manager, receiver.url, ["run.completed"])

    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    [delivery] = _settled(endpoint["id"])
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", 4, None)
    assert [a.status_code for a in _attempts(delivery)] == [503, 503, 503, 503]


def test_a_dead_endpoint_does_not_slow_the_run(api, manager, receiver, quick):
    receiver.script = ["hang"]
    quick.AGENTPLATFORM = {**quick.AGENTPLATFORM, "WEBHOOK_TIMEOUT": 30.0}
    endpoint = _register(manager, receiver.url, ["run.completed"])

    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+2"})
    wait_until(lambda: len(receiver.received) == 1)  # the first attempt is in flight, stuck

    assert (status, run["status"], run["output"]) == (201, "completed", "4 (and tool_denied)")
    [delivery] = WebhookDelivery.objects.filter(endpoint_id=endpoint["id"])
    assert (delivery.status, delivery.attempt_count, delivery.claimed_until is not None) == ("pending", 0, True)
    _, second = api.post("/api/v1/agents/calc/runs/", {"input": "3+3"})  # runs go on meanwhile
    assert second["status"] == "completed"

    receiver.release.set()  # the endpoint hangs up; the next attempt succeeds
    deliveries = _settled(endpoint["id"], count=2)
    assert {d.status for d in deliveries} == {"delivered"}


def test_an_https_endpoint_is_reached_by_its_name_on_the_checked_address(
    api, manager, tls_receiver, quick, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_receiver.certificate))  # trust the test's certificate
    endpoint = _register(manager, tls_receiver.url, ["run.completed"])

    api.post("/api/v1/agents/calc/runs/", {"input": "2+5"})

    [delivery] = _settled(endpoint["id"])
    assert (delivery.status, delivery.attempt_count) == ("delivered", 1)
    [request] = tls_receiver.received
    assert request.headers["Host"] == tls_receiver.url.split("/")[2]  # localhost:port, not the address


def test_an_https_endpoint_with_an_untrusted_certificate_fails(api, manager, tls_receiver, quick):
    endpoint = _register(manager, tls_receiver.url, ["run.completed"])

    api.post("/api/v1/agents/calc/runs/", {"input": "2+6"})

    [delivery] = _settled(endpoint["id"])
    assert (delivery.status, delivery.attempt_count) == ("failed", 4)
    assert "CERTIFICATE_VERIFY_FAILED" in _attempts(delivery)[0].error
    assert tls_receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://192.168.1.20:9000/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_private_addresses_are_refused_at_registration(manager, url):
    status, body = manager.post("/api/v1/webhooks/", {"url": url, "event_types": ["run.completed"]})

    assert (status, body["error"]["code"]) == (400, "webhook_url_refused")
    assert body["error"]["details"]["field"] == "url"
    assert not webhook_transport.is_public(body["error"]["details"]["address"])
    assert not WebhookEndpoint.objects.exists()


def test_a_url_changed_to_a_private_address_is_refused(manager, receiver, quick):
    endpoint = _register(manager, receiver.url)
    quick.AGENTPLATFORM = {**quick.AGENTPLATFORM, "WEBHOOKS_ALLOW_PRIVATE": False}

    status, body = manager.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"url": "http://127.0.0.2/x"})

    assert (status, body["error"]["code"]) == (400, "webhook_url_refused")
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).url == receiver.url


def test_a_private_address_is_refused_at_delivery_time(api, manager, receiver, quick):
    endpoint = _register(manager, receiver.url, ["run.completed"])  # allowed then
    quick.AGENTPLATFORM = {**quick.AGENTPLATFORM, "WEBHOOKS_ALLOW_PRIVATE": False}

    api.post("/api/v1/agents/calc/runs/", {"input": "1+2"})

    [delivery] = _settled(endpoint["id"])
    assert (delivery.status, delivery.attempt_count) == ("failed", 1)  # refused: not retried
    [attempt] = _attempts(delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("Refused: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.received == []


def test_public_addresses_are_told_from_private_ones():
    assert webhook_transport.is_public("93.184.216.34")
    assert webhook_transport.is_public("2606:4700::1111")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "fe80::1%eth0"):
        assert not webhook_transport.is_public(address), address
    assert not webhook_transport.is_public("::ffff:169.254.169.254")


def test_the_backoff_doubles_up_to_its_cap_then_gives_up(settings):
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        "WEBHOOK_RETRY_BASE": 30.0,
        "WEBHOOK_RETRY_MAX": 3600.0,
        "WEBHOOK_MAX_ATTEMPTS": 8,
    }

    assert [webhooks.backoff(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, None]
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "WEBHOOK_RETRY_MAX": 100.0}
    assert webhooks.backoff(4) == 100


def test_endpoints_crud_shows_the_secret_once_and_stores_it_encrypted(manager, make_api, receiver, quick):
    endpoint = _register(manager, receiver.url, ["run.failed"])

    assert endpoint["secret"].startswith("whsec_")
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert endpoint["secret"] not in stored.secret_encrypted
    assert webhook_signing.decrypt(stored.secret_encrypted) == endpoint["secret"]
    status, shown = manager.get(f"/api/v1/webhooks/{endpoint['id']}/")
    assert status == 200
    assert "secret" not in shown
    assert "secret" not in manager.get("/api/v1/webhooks/")[1]["results"][0]

    status, changed = manager.patch(
        f"/api/v1/webhooks/{endpoint['id']}/", {"event_types": ["run.completed", "run.failed"], "enabled": False}
    )
    assert (status, changed["event_types"], changed["enabled"]) == (200, ["run.completed", "run.failed"], False)
    assert changed["url"] == receiver.url
    status, _ = manager.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"secret": "my-own-secret-of-20c"})
    assert status == 200
    assert webhook_signing.decrypt(WebhookEndpoint.objects.get(pk=endpoint["id"]).secret_encrypted) == (
        "my-own-secret-of-20c"
    )

    bob = make_api("bob", scopes=["webhooks:manage"])
    assert bob.get("/api/v1/webhooks/")[1]["results"] == []
    status, body = bob.get(f"/api/v1/webhooks/{endpoint['id']}/")
    assert (status, body["error"]["code"]) == (404, "webhook_not_found")
    assert bob.delete(f"/api/v1/webhooks/{endpoint['id']}/")[0] == 404

    assert manager.delete(f"/api/v1/webhooks/{endpoint['id']}/")[0] == 204
    assert manager.get(f"/api/v1/webhooks/{endpoint['id']}/")[0] == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"event_types": ["run.completed"]}, "invalid_request"),  # no url
        ({"url": "https://example.com/h", "event_types": []}, "invalid_request"),
        ({"url": "https://example.com/h", "event_types": ["run.exploded"]}, "invalid_request"),
        ({"url": "https://example.com/h", "event_types": "run.completed"}, "invalid_request"),
        ({"url": "https://example.com/h", "event_types": ["run.failed"], "color": "red"}, "invalid_request"),
        ({"url": "https://example.com/h", "event_types": ["run.failed"], "secret": "short"}, "invalid_request"),
        ({"url": 42, "event_types": ["run.failed"]}, "invalid_request"),
        ({"url": "ftp://example.com/h", "event_types": ["run.failed"]}, "invalid_webhook_url"),
        ({"url": "not a url", "event_types": ["run.failed"]}, "invalid_webhook_url"),
        ({"url": "https://user:pw@example.com/h", "event_types": ["run.failed"]}, "invalid_webhook_url"),
        ({"url": "https://example.com:99999/h", "event_types": ["run.failed"]}, "invalid_webhook_url"),
        ({"url": "https://no-such-host.invalid/h", "event_types": ["run.failed"]}, "invalid_webhook_url"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_code_and_writes_nothing(manager, body, code):
    status, error = manager.post("/api/v1/webhooks/", body)

    assert (status, error["error"]["code"]) == (400, code)
    assert not WebhookEndpoint.objects.exists()


def test_managing_webhooks_needs_the_scope(api, manager, receiver, quick):
    status, body = api.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["run.failed"]})
    assert (status, body["error"]["code"]) == (403, "webhooks_forbidden")
    assert api.get("/api/v1/webhooks/")[0] == 403
    status, body = manager.post("/api/v1/webhooks/", raw="{not json")
    assert (status, body["error"]["code"]) == (400, "malformed_json")
    assert manager.get(f"/api/v1/webhooks/{uuid.uuid4()}/")[1]["error"]["code"] == "webhook_not_found"
    assert manager.post(f"/api/v1/webhooks/deliveries/{uuid.uuid4()}/resend")[1]["error"]["code"] == (
        "webhook_delivery_not_found"
    )
    assert manager.get("/api/v1/webhooks/not-a-uuid/")[1]["error"]["code"] == "not_found"  # not an id
    assert not WebhookEndpoint.objects.exists()


def test_resend_makes_one_more_attempt(api, manager, receiver, quick):
    endpoint = _register(manager, receiver.url, ["run.completed"])
    api.post("/api/v1/agents/calc/runs/", {"input": "4+4"})
    [delivery] = _settled(endpoint["id"])

    status, body = manager.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/resend")

    assert (status, body["id"]) == (202, str(delivery.pk))
    wait_until(lambda: WebhookAttempt.objects.filter(delivery=delivery).count() == 2)
    _, shown = manager.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/")
    assert [(a["number"], a["trigger"], a["status_code"]) for a in shown["attempts"]] == [
        (1, "automatic", 200),
        (2, "resend", 200),
    ]
    assert shown["status"] == "delivered"
    assert receiver.received[0].body == receiver.received[1].body
    _, key = create_api_key(create_user("mallory"), scopes=["webhooks:manage"])
    status, body = Api(key).post(f"/api/v1/webhooks/deliveries/{delivery.pk}/resend")
    assert (status, body["error"]["code"]) == (404, "webhook_delivery_not_found")

    manager.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"enabled": False})
    status, body = manager.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/resend")
    assert (status, body["error"]["code"]) == (409, "webhook_disabled")


def test_only_the_owners_runs_and_wanted_events_are_sent(api, make_api, manager, receiver, quick):
    endpoint = _register(manager, receiver.url, ["run.failed"])
    bob = make_api("bob")

    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})  # completed: not wanted
    bob.post("/api/v1/agents/calc/runs/", {"input": "oops"})  # failed, but bob's
    api.post("/api/v1/agents/calc/runs/", {"input": "oops"})  # alice's failed run

    [delivery] = _settled(endpoint["id"])
    assert delivery.event_type == "run.failed"
    assert json.loads(delivery.payload)["data"]["error"]["code"] == "agent_error"
    assert len(receiver.received) == 1


def test_an_expired_approval_is_sent(api, manager, receiver, quick, llm):
    endpoint = _register(manager, receiver.url, ["approval.requested", "approval.expired"])
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    ApprovalRequest.objects.filter(run_id=run["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1), expiry_action="cancel_run"
    )

    assert services.expire_due() == 1

    requested, expired = _settled(endpoint["id"], count=2)
    assert (requested.event_type, expired.event_type) == ("approval.requested", "approval.expired")
    data = json.loads(expired.payload)["data"]
    assert (data["status"], data["channel"], data["expiry_action"], data["run_id"]) == (
        "expired",
        "expiry",
        "cancel_run",
        run["id"],
    )
    assert Run.objects.get(pk=run["id"]).status == "cancelled"  # and no run.* event was wanted


def test_a_staff_endpoint_may_receive_every_owners_events(api, alice, make_api, receiver, quick):
    ops = create_user("ops", is_staff=True)
    endpoint, _ = webhooks.create_endpoint(
        actor=SETUP, owner=ops, url=receiver.url, event_types=["run.completed"], all_owners=True
    )

    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    make_api("bob").post("/api/v1/agents/calc/runs/", {"input": "2+2"})

    deliveries = _settled(endpoint.pk, count=2)
    assert sorted(json.loads(d.payload)["data"]["output"] for d in deliveries) == [
        "2 (and tool_denied)",
        "4 (and tool_denied)",
    ]
    with pytest.raises(InvalidInput):
        webhooks.create_endpoint(
            actor=SETUP, owner=alice, url=receiver.url, event_types=["run.completed"], all_owners=True
        )
    ops.is_staff = False
    ops.save()
    assert webhooks.emit(WebhookEvent.RUN_COMPLETED, {}, owner_id=alice.pk) == []


def test_an_overdue_delivery_is_sent_again_by_the_periodic_task(alice, celery_worker, receiver, quick):
    endpoint, _ = webhooks.create_endpoint(actor=SETUP, owner=alice, url=receiver.url, event_types=["run.completed"])
    delivery = WebhookDelivery.objects.create(  # as if its task had been lost
        endpoint=endpoint,
        event_id="00000000-0000-0000-0000-000000000001",
        event_type="run.completed",
        payload='{"id":"00000000-0000-0000-0000-000000000001","type":"run.completed","created_at":"","data":{}}',
        next_attempt_at=timezone.now() - timedelta(hours=1),
    )

    assert webhooks.requeue_stalled() == {"requeued": 1}

    [delivered] = _settled(str(endpoint.pk))
    assert (delivered.pk, delivered.status) == (delivery.pk, "delivered")


# The admin (behind 2FA)


def test_the_admin_registers_an_endpoint_shows_its_secret_once_and_refuses_private_urls(
    admin_client, alice, receiver, settings
):
    form = {"owner": str(alice.pk), "url": receiver.url, "event_types": ["run.completed"], "enabled": "on"}

    refused = admin_client.post("/admin/approvals/webhookendpoint/add/", form)
    assert refused.status_code == 200
    assert "resolves to 127.0.0.1" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()

    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "WEBHOOKS_ALLOW_PRIVATE": True}
    page = admin_client.post("/admin/approvals/webhookendpoint/add/", form, follow=True).content.decode()
    secret = re.search(r"<code id='new-webhook-secret'>(whsec_[^<]+)</code>", page)
    assert secret, page[:3000]
    endpoint = WebhookEndpoint.objects.get()
    assert webhook_signing.decrypt(endpoint.secret_encrypted) == secret.group(1)
    change = admin_client.get(f"/admin/approvals/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert secret.group(1) not in change


def test_the_admin_shows_attempts_and_resends(admin_client, api, manager, receiver, quick):
    receiver.script = [500]
    endpoint = _register(manager, receiver.url, ["run.completed"])
    api.post("/api/v1/agents/calc/runs/", {"input": "5+5"})
    [delivery] = _settled(endpoint["id"])

    listing = admin_client.get("/admin/approvals/webhookdelivery/").content.decode()
    assert "run.completed" in listing
    page = admin_client.get(f"/admin/approvals/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "HTTP 500" in page
    assert "boom" in page
    assert admin_client.get(f"/admin/approvals/webhookendpoint/{endpoint['id']}/change/").status_code == 200

    response = admin_client.post(
        "/admin/approvals/webhookdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]}, follow=True
    )

    assert "1 deliver(y/ies) sent again." in response.content.decode()
    wait_until(lambda: WebhookAttempt.objects.filter(delivery=delivery).count() == 3)
    assert _attempts(delivery)[-1].trigger == "resend"


def test_an_admin_session_manages_webhooks_only_when_verified_by_its_second_factor(admin_client):
    assert admin_client.get("/api/v1/webhooks/").status_code == 200
    unverified = Client()
    unverified.force_login(get_user_model().objects.get(username="root"))  # a password, no second factor

    response = unverified.get("/api/v1/webhooks/")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "webhooks_forbidden")
