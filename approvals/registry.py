"""How approvals reaches the app above it: the run that waits for a request.

`approvals` imports no other app. The `agents` app registers, at start-up, what a decision
and an expiry do to the run (write the event, resume or end the run); the services here
call it inside the transaction that records the change, so both commit or roll back
together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from approvals.models import ApprovalRequest

Handler = Callable[["ApprovalRequest"], None]


@dataclass
class RunHooks:
    """What happens to the waiting run: filled once by the agents app."""

    decided: list[Handler] = field(default_factory=list)  # approved or rejected
    expired: list[Handler] = field(default_factory=list)  # its expiry action applies

    def on_decided(self, handler: Handler) -> Handler:
        if handler not in self.decided:
            self.decided.append(handler)
        return handler

    def on_expired(self, handler: Handler) -> Handler:
        if handler not in self.expired:
            self.expired.append(handler)
        return handler


run_hooks = RunHooks()
