"""The LangGraph Agent Server API (what `langgraph-sdk` speaks), as an adapter over the
platform's agents, sessions and runs: an agent is an assistant, a session a thread."""
