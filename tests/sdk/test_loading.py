"""Agents are found by reference: `module:attr` or `path/to/file.py:attr`."""

from __future__ import annotations

import sys
import textwrap

import pytest

from agentplatform.sdk.loading import AgentLoadError, load_agents, reference_for
from tests import sample_agents


def test_module_references():
    assert load_agents("tests.sample_agents:openai_agent") == [sample_agents.openai_agent]
    assert load_agents("tests.sample_agents:AGENTS") == sample_agents.AGENTS


def test_file_references_load_without_running_main(tmp_path):
    script = tmp_path / "my_agent.py"
    script.write_text(
        textwrap.dedent(
            """
            from agentplatform import Agent, serve
            agent = Agent(name="from-file")
            if __name__ == "__main__":
                raise SystemExit("must not run")
            """
        )
    )

    (agent,) = load_agents(f"{script}:agent")

    assert agent.name == "from-file"
    assert reference_for(agent).endswith(":agent")


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no-colon", "must look like"),
        ("tests.no_such_module:agent", "cannot import"),
        ("tests.sample_agents:TOOLS", "is not an Agent"),
        ("tests.sample_agents:missing", "is not an Agent"),
    ],
)
def test_bad_references(reference, message):
    with pytest.raises(AgentLoadError, match=message):
        load_agents(reference)


def test_reference_for_an_unbound_agent():
    from agentplatform import Agent

    with pytest.raises(AgentLoadError, match="module-level name"):
        reference_for(Agent(name="floating"))
    assert reference_for(sample_agents.calculator) == "tests.sample_agents:calculator"
    assert "tests.sample_agents" in sys.modules
