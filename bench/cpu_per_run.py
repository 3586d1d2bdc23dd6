"""Platform CPU per run, with a model that answers at once: what a run costs the platform itself.

Starts `manage.py up` (embedded defaults) from a checkout, with the fake OpenAI-compatible
model answering instantly (each run: two model calls and one tool call, a new session),
warms it up, then sends wait-mode runs from C threads and reads, from /proc, the CPU each
of up's processes used: milliseconds per run, per process and in all. CPU time, not wall
time, so a busy machine inflates it less than it does runs/s; compare two checkouts in
the same run, rounds interleaved (`--compare`), and read the ratio.

    python bench/cpu_per_run.py                              # this checkout
    python bench/cpu_per_run.py --compare ../other-checkout  # A/B, 3 interleaved rounds each
    python bench/cpu_per_run.py --database-url postgresql://...  # on PostgreSQL
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for child in (task / "children").read_text().split():
                found += _tree(int(child))
        except OSError:
            continue
    return found


def _cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far, by process kind (its command line, shortened)."""
    used: dict[str, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        kind = _kind(argv)
        used[kind] = used.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return used


def _kind(argv: list[str]) -> str:
    line = " ".join(argv)
    for name, marker in (("web", "agentplatform.web"), ("web", "daphne"), ("worker", "celery"), ("span sink", "sink")):
        if marker in line:
            return name
    return "redis" if "redis" in line else "supervisor"


def _load(port: int, key: str, runs: int, clients: int) -> float:
    """Send `runs` wait-mode runs from `clients` threads; runs/s. Every answer must be 201."""
    codes: dict[int, int] = {}
    lock = threading.Lock()
    body = json.dumps({"input": "hi"})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(count):
            connection.request("POST", "/api/v1/agents/bench/runs/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                codes[response.status] = codes.get(response.status, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(runs // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if set(codes) != {201}:
        raise SystemExit(f"unexpected answers: {codes}")
    return runs / (time.monotonic() - started)


def measure(checkout: Path, runs: int, clients: int, database_url: str | None) -> tuple[dict[str, float], float]:
    """ms of CPU per run by process kind, and runs/s, for `up` from `checkout` (on SQLite, or
    on `database_url`: a PostgreSQL, whose own CPU is not counted)."""
    python = str(checkout / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory() as work:
        model_port, port = _free_port(), _free_port()
        env = {
            **os.environ,
            "AGENTPLATFORM_DATA_DIR": str(Path(work) / "data"),
            "AGENTPLATFORM_AGENTS": "bench.agents:agent",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
            "OPENAI_API_KEY": "bench",
            "PYTHONPATH": str(checkout),
        }
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        model_argv = [python, "-m", "tests.fakes.llm_server", "--port", str(model_port), "--mode", "one-tool-call"]
        model = _spawn(model_argv, checkout, env)
        up = _spawn([python, "manage.py", "up", "--port", str(port)], checkout, env)
        try:
            _wait_ready(port)
            created = subprocess.run(
                [python, "manage.py", "create_api_key", "--user", "bench"],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            key = created.stdout.strip().splitlines()[-1]
            _load(port, key, 100, 8)  # warm-up
            before = _cpu(_tree(up.pid))
            rate = _load(port, key, runs, clients)
            after = _cpu(_tree(up.pid))
        finally:
            up.terminate()
            model.terminate()
            up.wait(60)
            model.wait(10)
    per_run = {kind: (after[kind] - before.get(kind, 0.0)) * 1000 / runs for kind in after}
    return per_run, rate


def _spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/v1/health/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("up did not become healthy in 120 s")


def _report(name: str, rounds: list[tuple[dict[str, float], float]]) -> float:
    kinds = sorted({kind for per_run, _ in rounds for kind in per_run})
    medians = {kind: statistics.median(per_run.get(kind, 0.0) for per_run, _ in rounds) for kind in kinds}
    total = statistics.median(sum(per_run.values()) for per_run, _ in rounds)
    rate = statistics.median(r for _, r in rounds)
    parts = ", ".join(f"{kind} {medians[kind]:.1f}" for kind in kinds)
    print(f"{name}: {total:.1f} ms of CPU per run ({parts}); {rate:.1f} runs/s; median of {len(rounds)}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout (with its .venv) to measure in turn")
    parser.add_argument("--database-url", help="a PostgreSQL for `up` (each round migrates it), instead of SQLite")
    args = parser.parse_args()
    checkouts = [ROOT, *([args.compare.resolve()] if args.compare else [])]
    results: dict[Path, list[tuple[dict[str, float], float]]] = {checkout: [] for checkout in checkouts}
    for _ in range(args.rounds):
        for checkout in checkouts:
            results[checkout].append(measure(checkout, args.runs, args.clients, args.database_url))
    totals = [_report(str(checkout), rounds) for checkout, rounds in results.items()]
    if len(totals) == 2:
        print(f"ratio (this checkout / the other): {totals[0] / totals[1]:.2f}")


if __name__ == "__main__":
    main()
