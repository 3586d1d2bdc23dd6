"""History at scale: sessions of 10 to 10,000 messages, seeded with SQL, read and appended to via the API."""

from __future__ import annotations

import hashlib
import json
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.load import RUNS_PATH, Check, Client, Outcome, percentile, run_error, timed

SIZES = (10, 100, 1_000, 10_000)
PAGE = 50
SESSION_COLUMNS = "id, owner_id, agent_id, title, metadata, message_count, created_at, updated_at"
MESSAGE_COLUMNS = "session_id, position, role, content, tool_calls, tool_call_id, tool_name, is_error, created_at"


def _message(session_id: uuid.UUID, position: int, step: int, turn: int, now: datetime) -> tuple[Any, ...]:
    """One message of a 4-message turn like a real run's: question, tool call, tool result, answer."""
    call_id = f"call_{turn}"
    role, content, calls, tool_call_id, tool_name = [
        ("user", f"Question {turn}: what is stored under key {turn}?", [], "", ""),
        ("assistant", "", [{"id": call_id, "name": "lookup", "arguments": {"key": str(turn)}}], "", ""),
        ("tool", f"value-of-{turn}", [], call_id, "lookup"),
        ("assistant", f"Key {turn} holds value-of-{turn}.", [], "", ""),
    ][step]
    return (session_id, position, role, content, json.dumps(calls), tool_call_id, tool_name, False, now)


def message_rows(session_id: uuid.UUID, size: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """Positions 0..size-1; shifted so that the session ends on a final answer, as a finished run leaves it."""
    shift = -size % 4
    for position in range(size):
        turn, step = divmod(position + shift, 4)
        yield _message(session_id, position, step, turn, now)


def _owner_and_agent(conn: psycopg.Connection[Any], api_key: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT k.user_id, a.id FROM agents_apikey k, agents_agent a WHERE k.key_hash = %s AND a.name = 'bench'",
        (hashlib.sha256(api_key.encode()).hexdigest(),),
    ).fetchone()
    if row is None:
        raise RuntimeError("the API key's user or the bench agent is missing from the database")
    return row[0], row[1]


def _seed_session(conn: psycopg.Connection[Any], owner_id: int, agent_id: int, size: int) -> str:
    session_id, now = uuid.uuid4(), datetime.now(UTC)
    with conn.transaction():
        conn.execute(
            f"INSERT INTO agents_session ({SESSION_COLUMNS}) VALUES (%s, %s, %s, %s, '{{}}', %s, %s, %s)",
            (session_id, owner_id, agent_id, f"bench history {size}", size, now, now),
        )
        with conn.cursor().copy(f"COPY agents_message ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
            for row in message_rows(session_id, size, now):
                copy.write_row(row)
    return str(session_id)


def seed_sessions(database_url: str, api_key: str) -> dict[int, str]:
    """One session per size, owned by the API key's user; returns {size: session id}."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        owner_id, agent_id = _owner_and_agent(conn, api_key)
        sessions = {size: _seed_session(conn, owner_id, agent_id, size) for size in SIZES}
        conn.execute("ANALYZE agents_session")  # the planner's statistics, as autovacuum would leave them
        conn.execute("ANALYZE agents_message")
    return sessions


def create_sessions(database_url: str, api_key: str, count: int, title: str) -> list[str]:
    """`count` empty sessions of the bench agent, owned by the API key's user (one COPY); their ids."""
    ids, now = [uuid.uuid4() for _ in range(count)], datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        owner_id, agent_id = _owner_and_agent(conn, api_key)
        with conn.transaction(), conn.cursor().copy(f"COPY agents_session ({SESSION_COLUMNS}) FROM STDIN") as copy:
            for session_id in ids:
                copy.write_row((session_id, owner_id, agent_id, title, "{}", 0, now, now))
        conn.execute("ANALYZE agents_session")
    return [str(session_id) for session_id in ids]


def _history_check(session_id: str, size: int) -> Check:
    path = f"/api/v1/sessions/{session_id}/messages/?order=desc&limit={PAGE}"

    def check(client: Client) -> str | None:
        status, body = client.request("GET", path)
        if status != 200:
            return f"HTTP {status}: {json.dumps(body)[:200]}"
        positions = [m["position"] for m in body["results"]]
        if positions != list(range(size - 1, size - 1 - min(PAGE, size), -1)):
            return f"wrong page for {size} messages: positions {positions[:3]}..."
        return None

    return check


def _append_check(session_id: str) -> Check:
    def check(client: Client) -> str | None:
        return run_error(*client.request("POST", RUNS_PATH, {"input": "And key 7?", "session_id": session_id}))

    return check


@dataclass
class Timings:
    outcomes: list[Outcome]

    @property
    def latencies_ms(self) -> list[float]:
        return [o.seconds * 1000 for o in self.outcomes if o.error is None]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def errors(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error is not None]


def interleaved(client: Client, checks: dict[int, Check], samples: int, warmup: int) -> dict[int, Timings]:
    """Time every check `samples` times, alternating between them so drift affects all alike."""
    timings = {key: Timings([]) for key in checks}
    for index in range(warmup + samples):
        for key, check in checks.items():
            outcome = timed(check, client)
            if index >= warmup:
                timings[key].outcomes.append(outcome)
    return timings


def measure_history(client: Client, sessions: dict[int, str], samples: int) -> dict[int, Timings]:
    checks = {size: _history_check(session_id, size) for size, session_id in sessions.items()}
    return interleaved(client, checks, samples, warmup=10)


def measure_append(client: Client, sessions: dict[int, str], samples: int) -> dict[int, Timings]:
    """Runs appended to the shortest and the longest session (each adds 4 messages)."""
    ends = (min(sessions), max(sessions))
    return interleaved(client, {size: _append_check(sessions[size]) for size in ends}, samples, warmup=3)
