"""State changes for agents, sessions, runs and API keys. Views, tasks and commands call these."""

from agents.services.agents import sync_agents, tool_permissions
from agents.services.execution import (
    RunRecord,
    execute_queued_run,
    finish_run,
    reap_expired_runs,
    resume_paused_run,
)
from agents.services.keys import create_api_key, revoke_api_keys
from agents.services.runs import cancel_run, cancel_session_run, start_run, wait_for_run
from agents.services.sessions import create_session, delete_session, update_session

__all__ = [
    "RunRecord",
    "cancel_run",
    "cancel_session_run",
    "create_api_key",
    "create_session",
    "delete_session",
    "execute_queued_run",
    "finish_run",
    "reap_expired_runs",
    "resume_paused_run",
    "revoke_api_keys",
    "start_run",
    "sync_agents",
    "tool_permissions",
    "update_session",
    "wait_for_run",
]
