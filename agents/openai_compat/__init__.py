"""OpenAI-compatible endpoints (what the official `openai` SDK speaks), as an adapter over the
platform's agents, runs, events and approvals: an agent is a model, a response is a run."""
