"""Read replicas: lists and history read from a real streaming standby (scripts/test starts one
next to the PostgreSQL primary); a caller that wrote, and everything else, reads the primary; a
replica that stops or falls behind is skipped.

The standby is made to lag by pausing its replay (`pg_wal_replay_pause()`): a row written on
the primary then is on the primary only, so a response that lacks it was read from the replica.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from agentplatform import replicas
from agentplatform.env import replica_databases
from agents import services
from agents.models import Agent, Message, Run, RunStatus, Session
from tests.factories import create_api_key, create_user, signed_in_admin
from tests.fakes.llm_server import Text
from tests.infra import wait_until

ROOT = Path(__file__).resolve().parents[2]
REPLICA = "replica1"
PRIMARY_SETTINGS = {"ENGINE": "django.db.backends.postgresql"}


def needs_replica(test: Any) -> Any:
    """A test that reads from the standby: committed rows (the standby sees nothing else)."""
    test = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])(test)
    reason = "needs PostgreSQL and TEST_REPLICA_URL, a standby of it (scripts/test starts one)"
    return pytest.mark.skipif(REPLICA not in settings.DATABASES, reason=reason)(test)


def _on(database: str, sql: str, params: list[Any] | None = None) -> Any:
    with connections[database].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _primary_lsn() -> str:
    return str(_on("default", "SELECT pg_current_wal_insert_lsn()"))  # inserted: commits may not be flushed yet


def _replayed_all() -> bool:
    return bool(_on(REPLICA, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [_primary_lsn()]))


def _received_all() -> bool:
    return bool(_on(REPLICA, "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", [_primary_lsn()]))


def _pause_replay() -> None:
    wait_until(_replayed_all, timeout=30)  # what the test wrote so far is on the replica too
    _on(REPLICA, "SELECT pg_wal_replay_pause()::text")
    wait_until(lambda: _on(REPLICA, "SELECT pg_get_wal_replay_pause_state()") == "paused", timeout=30)


def _resume_replay() -> None:
    if _on(REPLICA, "SELECT pg_is_wal_replay_paused()"):
        _on(REPLICA, "SELECT pg_wal_replay_resume()::text")
    wait_until(_replayed_all, timeout=30)


@pytest.fixture
def use_replica(transactional_db: None, settings: Any) -> Iterator[None]:
    """The standby as the deployment's one replica, measured on every read (no cached health)."""
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        "REPLICAS": [REPLICA],
        "REPLICA_CHECK_SECONDS": 0.0,
        "REPLICA_MAX_LAG_SECONDS": 3600.0,
        "REPLICA_STICKY_SECONDS": 60.0,
    }
    replicas.monitor.cache_clear()
    yield
    _resume_replay()  # before the database is emptied for the next test, which the standby must replay
    replicas.monitor.cache_clear()


class Api:
    def __init__(self, owner: Any) -> None:
        _, key = create_api_key(owner)
        self.client = Client(headers={"Authorization": f"Bearer {key}"})

    def sessions(self) -> list[str]:
        response = self.client.get("/api/v1/sessions/")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    def start_session(self) -> str:
        response = self.client.post("/api/v1/sessions/", {"agent": "oai"}, content_type="application/json")
        assert response.status_code == 201, response.content
        return str(response.json()["id"])


def _session(owner: Any) -> str:
    """A session written on the primary by someone else than the caller (a worker, another process)."""
    return str(Session.objects.create(owner=owner, agent=Agent.objects.get(name="oai")).pk)


@pytest.mark.usefixtures("use_replica")
@needs_replica
def test_a_list_is_read_from_the_replica_until_the_caller_writes_then_from_the_primary():
    alice = create_user("alice")
    api = Api(alice)
    first = _session(alice)
    _pause_replay()
    second = _session(alice)  # on the primary only, for now

    assert api.sessions() == [first]  # the replica's state: alice wrote nothing yet

    third = api.start_session()  # alice writes: her reads go to the primary for a while
    assert set(api.sessions()) == {first, second, third}

    bob = Api(create_user("bob"))  # another caller, who wrote nothing: the replica
    assert bob.sessions() == []
    assert replicas.monitor().state(REPLICA).skipped_reads == 0


@pytest.mark.usefixtures("use_replica")
@needs_replica
def test_a_langgraph_thread_search_reads_the_replica_and_does_not_count_as_a_write():
    alice = create_user("alice")
    api = Api(alice)
    first = _session(alice)
    _pause_replay()
    _session(alice)

    searched = api.client.post("/langgraph/threads/search", {"limit": 10}, content_type="application/json")

    assert searched.status_code == 200
    assert [thread["thread_id"] for thread in searched.json()] == [first]
    assert api.sessions() == [first]  # a search is a POST that writes nothing: still the replica


@pytest.mark.usefixtures("use_replica", "celery_worker")
@needs_replica
def test_a_caller_whose_run_ended_reads_from_the_primary(llm):
    alice = create_user("alice")
    api = Api(alice)
    _pause_replay()
    llm.enqueue(Text("done"))

    # Not through a request (as a schedule starts one): the worker's ending marks her.
    run = services.start_run(owner=alice, api_key=None, agent_name="oai", input="hi")
    wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED, timeout=30)

    assert api.sessions() == [str(run.session_id)]  # the replica has no session of hers yet


@pytest.mark.usefixtures("use_replica")
@needs_replica
def test_a_session_history_and_the_admin_list_are_read_from_the_replica(settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "REPLICA_STICKY_SECONDS": 0.0}  # no caller reads its writes
    alice = create_user("alice")
    api = Api(alice)
    session = _session(alice)
    Message.objects.create(session_id=session, position=0, role="user", content="hello")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "s3cret-pass")
    admin = signed_in_admin(root, TOTPDevice.objects.create(user=root, name="phone", confirmed=True), "s3cret-pass")
    _pause_replay()
    Message.objects.create(session_id=session, position=1, role="assistant", content="hi")
    Session.objects.filter(pk=session).update(title="renamed on the primary")

    history = api.client.get(f"/api/v1/sessions/{session}/messages/").json()["results"]
    listed = admin.get("/admin/agents/session/").content.decode()

    assert [message["content"] for message in history] == ["hello"]
    assert "renamed on the primary" not in listed
    _resume_replay()
    history = api.client.get(f"/api/v1/sessions/{session}/messages/").json()["results"]
    assert [message["content"] for message in history] == ["hello", "hi"]
    assert "renamed on the primary" in admin.get("/admin/agents/session/").content.decode()


@pytest.fixture(scope="module")
def metric_reader() -> InMemoryMetricReader:
    """The process's OpenTelemetry MeterProvider (set once: the platform sets none of its own)."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


def _skipped_reads(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    found = reader.get_metrics_data()
    points = [
        point
        for resource in (found.resource_metrics if found else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "agentplatform.db.replica.skipped_reads"
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)  # a counter's
    ]
    labelled = [(dict(point.attributes or {}), point.value) for point in points]
    return {(str(labels["db.replica"]), str(labels["reason"])): int(value) for labels, value in labelled}


@pytest.mark.usefixtures("use_replica")
@needs_replica
def test_a_replica_further_behind_than_the_limit_is_skipped(settings, caplog, metric_reader):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "REPLICA_MAX_LAG_SECONDS": 0.0}
    alice = create_user("alice")
    api = Api(alice)
    first = _session(alice)
    _pause_replay()
    second = _session(alice)
    wait_until(_received_all, timeout=30)  # received, not replayed: the replica knows it is behind

    with caplog.at_level(logging.WARNING, logger="agentplatform.replicas"):
        assert set(api.sessions()) == {first, second}

    state = replicas.monitor().state(REPLICA)
    assert (state.status, state.skipped_reads) == ("lagging", 1)
    assert state.lag_seconds is not None
    assert state.lag_seconds > 0
    assert f"read replica {REPLICA} is" in caplog.text
    assert "behind (limit 0.0 s), its reads go to the primary" in caplog.text
    assert _skipped_reads(metric_reader) == {(REPLICA, "lagging"): 1}


@pytest.fixture
def stopped_replica(use_replica: None) -> Iterator[None]:
    """Stops the standby process when the test calls it; starts it again afterwards."""
    directory = os.environ["TEST_REPLICA_DIR"]
    yield
    port = str(urlsplit(os.environ["TEST_REPLICA_URL"]).port)
    subprocess.run([ROOT / "scripts" / "postgres.sh", "start", directory, port], check=True, capture_output=True)
    connections[REPLICA].close()
    wait_until(_replayed_all, timeout=60)


def _stop_replica() -> None:
    directory = os.environ["TEST_REPLICA_DIR"]
    subprocess.run([ROOT / "scripts" / "postgres.sh", "stop", directory], check=True, capture_output=True)
    assert not (Path(directory) / "data" / "postmaster.pid").exists()


@pytest.mark.usefixtures("stopped_replica")
@needs_replica
def test_a_replica_that_stops_is_skipped_and_reads_go_to_the_primary_without_an_error(settings, caplog):
    # Measured once only: the read itself finds the replica gone, not a fresh measurement.
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "REPLICA_CHECK_SECONDS": 3600.0}
    alice = create_user("alice")
    api = Api(alice)
    first = _session(alice)
    _pause_replay()
    second = _session(alice)
    assert api.sessions() == [first]  # the replica serves

    _stop_replica()
    with caplog.at_level(logging.WARNING, logger="agentplatform.replicas"):
        read_as_it_fell = set(api.sessions())
        read_after = set(api.sessions())
    ready = Client().get("/api/v1/ready/")

    assert read_as_it_fell == read_after == {first, second}  # the primary's
    assert f"read replica {REPLICA} is down, its reads go to the primary" in caplog.text
    assert ready.status_code == 200  # the primary serves: the process is ready
    detail = ready.json()["replicas"][REPLICA]
    assert detail["status"] == "down"
    assert detail["skipped_reads"] == 2
    assert "error" in detail


@pytest.mark.django_db
def test_without_replicas_every_read_is_on_the_primary_and_nothing_is_marked():
    alice = create_user("alice")
    api = Api(alice)
    written = _session(alice)

    assert api.sessions() == [written]
    created = api.start_session()

    assert replicas.reader(alice.pk) == "default"
    assert set(api.sessions()) == {written, created}
    assert not redis.Redis.from_url(settings.REDIS_URL).exists(f"agentplatform:replicas:wrote:{alice.pk}")
    assert "replicas" not in Client().get("/api/v1/ready/").json()


def test_replica_urls_become_mirrored_databases_with_quick_timeouts():
    found = replica_databases(
        ["postgres://reader:pw@standby-a:5433/agents", "postgresql://reader:pw@standby-b/agents?sslmode=require"],
        primary=PRIMARY_SETTINGS,
    )

    assert list(found) == ["replica1", "replica2"]
    first, second = found.values()
    assert (first["HOST"], first["PORT"], first["NAME"]) == ("standby-a", "5433", "agents")
    assert first["TEST"] == {"MIRROR": "default"}  # tests read the test database replication copies
    assert first["OPTIONS"]["connect_timeout"] == 2
    assert first["OPTIONS"]["pool"]["timeout"] == 2
    assert second["OPTIONS"]["sslmode"] == "require"
    assert replica_databases([], primary={"ENGINE": "django.db.backends.sqlite3"}) == {}


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        (["mysql://reader:hunter2@standby/agents"], "'mysql://reader:***@standby/agents' is not a PostgreSQL URL"),
        (["standby:5432"], "'standby:5432' is not a PostgreSQL URL"),
        (
            ["postgres://reader:hunter2@standby:54x2/agents"],
            "'postgres://reader:***@standby:54x2/agents' has an invalid port",
        ),
    ],
)
def test_a_malformed_replica_url_is_refused_naming_the_variable_and_hiding_the_password(urls, message):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_REPLICA_URLS") as refused:
        replica_databases(urls, primary=PRIMARY_SETTINGS)

    assert message in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_replicas_of_a_sqlite_database_are_refused_at_start_up(tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agentplatform.settings",
        "AGENTPLATFORM_DATA_DIR": str(tmp_path),
        "DATABASE_REPLICA_URLS": "postgres://reader@standby/agents",
    }
    environment.pop("DATABASE_URL", None)

    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )

    assert checked.returncode != 0
    assert "ImproperlyConfigured: DATABASE_REPLICA_URLS needs a PostgreSQL primary" in checked.stderr
