"""State changes for agents, sessions, runs and API keys. Views, tasks and commands call these."""

from agents.services.agents import sync_agents, tool_permissions
from agents.services.execution import execute, execute_queued_run, resume
from agents.services.keys import create_api_key, revoke_api_keys
from agents.services.leases import reap_expired_runs
from agents.services.record import RunRecord
from agents.services.retention import purge_expired
from agents.services.runs import Awaited, await_run, cancel_run, cancel_session_run, read_back, start_run, wait_for_run
from agents.services.schedules import (
    check_schedule,
    create_schedule,
    delete_schedule,
    fire_schedule,
    save_schedule,
    update_schedule,
)
from agents.services.sessions import assign_agent, create_session, delete_session, update_session

__all__ = [
    "Awaited",
    "RunRecord",
    "assign_agent",
    "await_run",
    "cancel_run",
    "cancel_session_run",
    "check_schedule",
    "create_api_key",
    "create_schedule",
    "create_session",
    "delete_schedule",
    "delete_session",
    "execute",
    "execute_queued_run",
    "fire_schedule",
    "purge_expired",
    "read_back",
    "reap_expired_runs",
    "resume",
    "revoke_api_keys",
    "save_schedule",
    "start_run",
    "sync_agents",
    "tool_permissions",
    "update_schedule",
    "update_session",
    "wait_for_run",
]
