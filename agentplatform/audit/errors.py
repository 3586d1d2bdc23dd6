"""The audit API's typed errors (mapped to HTTP by `agentplatform.api.errors`)."""

from __future__ import annotations

from agentplatform.errors import Forbidden


class StaffOnly(Forbidden):
    code = "audit_forbidden"
    default_message = "The audit log is for staff: use a key of a staff user."
