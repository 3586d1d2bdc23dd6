"""An MCP server (streamable HTTP, the official `mcp` SDK) as an adapter over the platform's
agents and runs: each agent an API key may use is a tool that runs it and answers."""
