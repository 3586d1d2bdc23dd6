"""The built-in agent loop: call the model, run the tools it asks for, until it answers."""

from __future__ import annotations

from agentplatform.sdk.agent import ApprovalRequired
from agentplatform.sdk.models import ChatMessage, ModelProvider, ModelRequest
from agents.runtime import RunContext, awaiting_results


class MaxStepsExceeded(Exception):  # reads as the run's outcome
    def __init__(self, max_steps: int) -> None:
        super().__init__(f"The agent did not finish within {max_steps} model calls.")
        self.max_steps = max_steps


def run_loop(ctx: RunContext, provider: ModelProvider, instructions: str, max_steps: int) -> str:
    """Returns the final answer (the caller records it with the run's completion); raises
    ApprovalRequired (the run pauses), ProviderError or MaxStepsExceeded.

    Tool failures (bad arguments, exceptions, timeouts, refusals) are results the model
    reads, and the loop goes on. Calls from one turn that need approval do not stop the
    turn's other calls; the run pauses after them. A resumed run first settles the calls
    it paused on (their decisions are in `ctx`), then calls the model again.
    """
    tools = ctx.offered_tools()
    for call in awaiting_results(ctx.transcript):
        ctx.execute_call(call)
    while ctx.steps < max_steps:
        ctx.check_cancelled()
        request = ModelRequest(instructions, (*ctx.prior, *ctx.transcript), tools, on_text=ctx.on_text)
        response = provider.complete(request)
        ctx.steps += 1
        ctx.usage.add(response.usage)
        if not response.tool_calls:
            return response.text
        ctx.record(ChatMessage(role="assistant", content=response.text, tool_calls=response.tool_calls))
        for call in response.tool_calls:
            ctx.execute_call(call)
        if ctx.pending:  # the turn's other calls ran; these wait for a decision
            raise ApprovalRequired(ctx.pending[0].call.name, ctx.pending[0].arguments)
    raise MaxStepsExceeded(max_steps)
