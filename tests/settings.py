"""Test settings: the real settings, plus the test agents and quick timeouts."""

from agentplatform.settings import *  # noqa: F403
from agentplatform.settings import AGENTPLATFORM

AGENTPLATFORM = {
    **AGENTPLATFORM,
    "AGENTS": ["tests.sample_agents:AGENTS"],
    "MODEL_TIMEOUT": 5.0,
    "MODEL_MAX_RETRIES": 2,
    "TOOL_TIMEOUT": 5.0,
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
