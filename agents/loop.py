"""The built-in agent loop: call the model, run the tools it asks for, until it answers."""

from __future__ import annotations

from agentplatform.sdk.agent import ApprovalRequired
from agentplatform.sdk.models import ChatMessage, ModelProvider, ModelRequest, ModelResponse
from agents.runtime import RunContext, awaiting_results


class MaxStepsExceeded(Exception):  # reads as the run's outcome
    def __init__(self, max_steps: int) -> None:
        super().__init__(f"The agent did not finish within {max_steps} model calls.")
        self.max_steps = max_steps


async def complete(ctx: RunContext, provider: ModelProvider, request: ModelRequest) -> ModelResponse:
    """One model call: on the loop when the provider has `acomplete` and the runtime's loop
    lasts (a provider's async client belongs to one loop), else on a pool thread."""
    acomplete = getattr(provider, "acomplete", None)
    if acomplete is not None and ctx.rt.lasting:
        response: ModelResponse = await acomplete(request)
        return response
    return await ctx.rt.blocking(provider.complete, request)


async def run_loop(ctx: RunContext, provider: ModelProvider, instructions: str, max_steps: int) -> str:
    """Returns the final answer (the caller records it with the run's completion); raises
    ApprovalRequired (the run pauses), ProviderError or MaxStepsExceeded.

    Tool failures (bad arguments, exceptions, timeouts, refusals) are results the model
    reads, and the loop goes on. Calls from one turn that need approval do not stop the
    turn's other calls; the run pauses after them. A resumed run first settles the calls
    it paused on (their decisions are in `ctx`), then calls the model again.
    """
    tools = ctx.offered_tools()
    for call in awaiting_results(ctx.transcript):
        await ctx.execute_call(call)
    while ctx.steps < max_steps:
        await ctx.check_cancelled()
        on_text = ctx.stream_text if ctx.on_text is not None else None
        request = ModelRequest(instructions, (*ctx.prior, *ctx.transcript), tools, on_text=on_text)
        response = await complete(ctx, provider, request)
        ctx.steps += 1
        ctx.usage.add(response.usage)
        if not response.tool_calls:
            return response.text
        await ctx.record(ChatMessage(role="assistant", content=response.text, tool_calls=response.tool_calls))
        for call in response.tool_calls:
            await ctx.execute_call(call)
        if ctx.pending:  # the turn's other calls ran; these wait for a decision
            raise ApprovalRequired(ctx.pending[0].call.name, ctx.pending[0].arguments)
    raise MaxStepsExceeded(max_steps)
