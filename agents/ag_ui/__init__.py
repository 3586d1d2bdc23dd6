"""AG-UI (the Agent-User Interaction protocol that CopilotKit and other front ends speak), as an
adapter over the platform's agents, sessions, runs, events and approvals: a thread is a session."""
