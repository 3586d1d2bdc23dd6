"""Test settings: the real settings, plus the test agents, quick timeouts and a real Redis."""

import atexit
import os

from agentplatform.env import replica_databases
from agentplatform.settings import *  # noqa: F403
from agentplatform.settings import AGENTPLATFORM
from tests.infra import start_redis, stop

if "REDIS_URL" not in os.environ:  # one throwaway Redis per test run, shared with its subprocesses
    _redis, os.environ["REDIS_URL"] = start_redis()
    atexit.register(stop, _redis)
REDIS_URL = os.environ["REDIS_URL"]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": REDIS_TIMEOUT}]},  # noqa: F405
    }
}
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)

AGENTPLATFORM = {
    **AGENTPLATFORM,
    "AGENTS": ["tests.sample_agents:AGENTS"],
    "MODEL_TIMEOUT": 5.0,
    "MODEL_MAX_RETRIES": 2,
    "TOOL_TIMEOUT": 5.0,
    "DELTA_INTERVAL": 3600.0,  # an answer's text streams as one message.delta (the streaming tests set 0)
}
# Tracing stays off for the suite (tests/tracing turns it on for its own tests), so that the
# rest of it neither waits for nor depends on the span store.
TRACING = {**TRACING, "ENABLED": os.environ.get("AGENTPLATFORM_TRACING", "false") == "true", "REDIS_URL": REDIS_URL}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, as in production: SQLite's busy timeout then makes concurrent writers wait
    # (an in-memory database shared between threads raises "table is locked" instead).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405

if os.environ.get("TEST_REPLICA_URL") and DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    # A streaming standby of the test server (scripts/test starts one), as `replica1`. It mirrors
    # the test database, which replication copies; only tests that name it in REPLICAS read from it.
    DATABASES.update(replica_databases([os.environ["TEST_REPLICA_URL"]], primary=DATABASES["default"]))  # noqa: F405
