"""The audit log: an append-only record of every change operators and API keys make to the
control plane, and of admin sign-ins. Apps record through `agentplatform.audit.services`, in
the transaction of the change."""
