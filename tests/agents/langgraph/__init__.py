"""The LangGraph Agent Server API, end to end: the real `langgraph-sdk` client against a real
Daphne process, the in-process worker and the fake model."""


def says(text: str) -> dict:
    """A run's input: one new human message."""
    return {"messages": [{"role": "user", "content": text}]}


def lg_url(daphne) -> str:
    return daphne.url.replace("ws://", "http://") + "/langgraph"
