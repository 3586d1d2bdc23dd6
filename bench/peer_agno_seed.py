"""Seed the peer's PostgreSQL storage for the reads benchmark, with Agno's own code.

Run with the peer's virtualenv (bench/capacity_peer.py makes it):
`python bench/peer_agno_seed.py DB_URL COUNT TURNS` prints COUNT session ids, one a line.
One session of TURNS runs (4 messages each, as the platform's seeded sessions: question,
tool call, tool result, answer) is written through `PostgresDb.upsert_session`, then
copied COUNT-1 times with SQL under new ids (and new run ids), so the rows are Agno's own.
"""

from __future__ import annotations

import sys
import time
import uuid

import psycopg
from agno.db.postgres import PostgresDb
from agno.models.message import Message
from agno.run.agent import RunOutput
from agno.run.base import RunStatus
from agno.session import AgentSession

SCHEMA = "ai"
SESSIONS = "agno_sessions"
RUNS = "agno_runs"


def _turn(session_id: str, turn: int, now: int) -> RunOutput:
    arguments = f'{{"key": "{turn}"}}'
    call = {"id": f"call_{turn}", "type": "function", "function": {"name": "lookup", "arguments": arguments}}
    messages = [
        Message(role="user", content=f"Question {turn}: what is stored under key {turn}?", created_at=now),
        Message(role="assistant", content="", tool_calls=[call], created_at=now),
        Message(role="tool", content=f"value-of-{turn}", tool_call_id=call["id"], tool_name="lookup", created_at=now),
        Message(role="assistant", content=f"Key {turn} holds value-of-{turn}.", created_at=now),
    ]
    return RunOutput(
        run_id=str(uuid.uuid4()), agent_id="bench", agent_name="bench", session_id=session_id,
        content=messages[-1].content, messages=messages, status=RunStatus.completed, created_at=now,
    )  # fmt: skip


def _copy(conn: psycopg.Connection, table: str, ids: list[str], template: str, **computed: str) -> None:
    """The template session's rows of `table`, once for each id (`new_id`), with `computed`
    columns given as SQL expressions (of the template's columns, `new_id` and `new_run_id`)."""
    columns = [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position", (SCHEMA, table),
    )]  # fmt: skip
    computed["session_id"] = "new_id"
    select = ", ".join(computed.get(column, column) for column in columns)
    conn.execute(
        f"INSERT INTO {SCHEMA}.{table} ({', '.join(columns)})"
        f" SELECT {select} FROM (SELECT *, gen_random_uuid()::text AS new_run_id"
        f" FROM {SCHEMA}.{table}, unnest(%s::text[]) AS new_id WHERE session_id = %s) AS template",
        (ids, template),
    )
    conn.execute(f"ANALYZE {SCHEMA}.{table}")


def main(db_url: str, count: int, turns: int) -> None:
    db = PostgresDb(db_url=db_url.replace("postgres://", "postgresql+psycopg://", 1), db_schema=SCHEMA)
    template, now = str(uuid.uuid4()), int(time.time())
    runs = [_turn(template, turn, now) for turn in range(turns)]
    db.upsert_session(AgentSession(session_id=template, agent_id="bench", runs=runs, created_at=now, updated_at=now))
    for index, run in enumerate(runs):  # the session's row holds no runs: they are rows of their own
        db.upsert_run(run, session_id=template, run_index=index)
    ids = [template] + [str(uuid.uuid4()) for _ in range(count - 1)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        _copy(conn, SESSIONS, ids[1:], template)
        run_data = "run_data || jsonb_build_object('session_id', new_id, 'run_id', new_run_id)"
        _copy(conn, RUNS, ids[1:], template, run_id="new_run_id", run_data=run_data)
    print("\n".join(ids))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
