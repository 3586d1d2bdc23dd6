"""The embedded engine starts with the server settings of CHDB_OPTIONS (its memory bounds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tracing import store

ROOT = Path(__file__).resolve().parents[2]
IDLE_THREADS = "SELECT getServerSetting('max_thread_pool_free_size')"

SCRIPT = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from tracing import store
    store.open_embedded()
    settings = "SELECT getServerSetting('max_thread_pool_free_size'), getServerSetting('mark_cache_size')"
    print(json.dumps(store.run_read(settings, {}).rows[0]))
    store.close()
    """
)


def test_the_engine_keeps_few_idle_threads_by_default(span_store):
    # Given the store this session opened with the default settings
    # When the engine is asked how many idle threads it keeps
    kept = store.run_read(IDLE_THREADS, {}).rows[0][0]

    # Then it is the default's bound, not ClickHouse's 1,000
    assert kept == 16


def test_chdb_options_from_the_environment_reach_the_engine(tmp_path):
    # Given a process whose environment sets other options
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AGENTPLATFORM_DATA_DIR": str(tmp_path / "data"),
        "AGENTPLATFORM_CHDB_OPTIONS": "max_thread_pool_free_size=3&mark_cache_size=1048576",
        "PYTHONPATH": str(ROOT),
    }

    # When it opens the embedded store
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    # Then the engine reports them
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [3, 1048576]
