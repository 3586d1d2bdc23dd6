"""`celery worker --beat-thread`: a worker whose beat thread dies stops, rather than running
on without a scheduler (the supervisor then stops the rest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.embedded import ROOT

pytestmark = pytest.mark.slow


def test_a_worker_whose_beat_thread_dies_stops(tmp_path):
    # Given a worker whose beat cannot load its scheduler
    argv = [
        sys.executable, "-m", "celery", "-A", "agentplatform.celery:app", "worker",
        "--beat-thread", "--scheduler", "tests.nowhere:Scheduler",
        "--pool", "threads", "--queues", "beat-thread-test", "--without-gossip", "--without-mingle", "-l", "INFO",
    ]  # fmt: skip
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}

    # When it starts, then it stops on its own, and says why
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert "beat stopped on its own; stopping the worker" in result.stderr + result.stdout
    assert "tests.nowhere" in result.stderr + result.stdout
