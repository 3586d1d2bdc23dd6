"""A2A (Agent2Agent) for the platform's agents, through the official `a2a-sdk`: its JSON-RPC
dispatcher (protocol 1.0, and 0.3's method names on the same endpoint) over a request
handler whose tasks are the platform's runs."""
