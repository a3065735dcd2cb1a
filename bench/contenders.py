"""The contenders and how each is measured: a child process against a counting proxy in front
of a fresh `mlflow server` on an identical copy of the seeded store.

Every contender is timed the same way (wall clock from spawn to exit, imports included, as a
user or a timer would run it), its peak memory is the child's own (`wait4`), and its
requests and bytes are the proxy's counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stores

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
CONTENDERS = ("baseline", "floor", "mlgov")
# Run filters the proxy refuses, as Azure ML may (`run.py --refuse-filters`): none by default.
REFUSED_FILTERS: tuple[str, ...] = ()

# Settings of the two scenarios (the seed is built for them: bench/seed.py).
COMMON = {
    "GOVERNANCE_CLEANUP_STATUSES": "FAILED",
    "GOVERNANCE_CLEANUP_AFTER_HOURS": "72",
    # Above the 1 % of failed runs at every size: the guard must not trip here.
    "GOVERNANCE_CLEANUP_MAX_RUNS": "100000",
    "GOVERNANCE_CATCHUP_HOURS": "24",
    "GOVERNANCE_REQUIRED_TAGS": "",
    "GOVERNANCE_TAG_DEFAULTS": "{}",
    "GOVERNANCE_PROMOTION_METRIC": "",
}
SCENARIOS: dict[str, dict[str, str]] = {
    "cleanup": COMMON,
    "full": {
        **COMMON,
        "GOVERNANCE_REQUIRED_TAGS": "owner,project",
        "GOVERNANCE_TAG_DEFAULTS": '{"project": "{experiment_name}"}',
        "GOVERNANCE_PROMOTION_METRIC": "auc",
        "GOVERNANCE_PROMOTION_THRESHOLD": "0.95",
    },
}


@dataclass
class Measured:
    """One contender run."""

    contender: str
    seconds: float
    exit_code: int
    peak_rss_mib: float
    proxy: dict[str, Any]
    output: Path
    end_state: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # user and system, the contender's process alone

    @property
    def requests(self) -> int:
        return int(self.proxy.get("requests", 0))


def base_env(tracking_uri: str, scenario: str, concurrency: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "MLFLOW_"))}
    env.update(SCENARIOS[scenario])
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if concurrency is not None:
        env["GOVERNANCE_CONCURRENCY"] = str(concurrency)
    if REFUSED_FILTERS:  # the baseline then filters in pandas, as its user would have to
        env["BENCH_BASELINE_CLIENT_FILTERS"] = "1"
    return env


# Spawned from a small interpreter, not from this process: a child forked from a process that
# has MLflow loaded starts with its pages counted in its peak RSS.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
elapsed = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    json.dump({"seconds": elapsed, "code": code, "maxrss_kib": usage.ru_maxrss, "cpu": cpu}, out)
"""


def spawn(
    command: list[str], env: dict[str, str], out: Path, cwd: Path = ROOT
) -> tuple[float, int, float, float]:
    """Run a child to completion: (seconds, exit code, peak RSS MiB, CPU seconds (user and
    system) of that child alone)."""
    result = out.with_suffix(".rusage")
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(result), *command]
        subprocess.run(launcher, stdout=stdout, stderr=stderr, env=env, cwd=cwd, check=True)
    measured = json.loads(result.read_text())
    rss = measured["maxrss_kib"] / 1024  # KiB on Linux
    return measured["seconds"], measured["code"], rss, measured["cpu"]


@contextlib.contextmanager
def counting_proxy(upstream: str, latency_ms: float, log: Path) -> Iterator[str]:
    port = stores.free_port()
    command = [
        sys.executable,
        str(BENCH / "proxy.py"),
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    for name in REFUSED_FILTERS:
        command += ["--refuse-filter", name]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        stores.wait_http(f"{url}/__proxy/stats", process, log, limit=30)
        yield url
    finally:
        stores.stop(process)


def proxy_call(url: str, what: str = "stats", method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/__proxy/{what}", method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
        return json.loads(answer.read())  # type: ignore[no-any-return]


# The `mlgov` console script, run from the tree under test (this one, or an exported ref).
MLGOV = "import sys; from shared.cli import main; sys.exit(main())"


def command_for(
    contender: str,
    scenario: str,
    concurrency: int,
    mlgov_report: Path | None,
    packages: Path | None = None,
) -> list[str]:
    if contender == "mlgov":
        # `-S`: no site-packages, only `packages` and the tree on PYTHONPATH (`run_contender`).
        python = [sys.executable] if packages is None else [sys.executable, "-S"]
        return [*python, "-c", MLGOV, "sweep", "--json"]
    if contender == "baseline":
        return [sys.executable, str(BENCH / "baseline.py"), scenario]
    if contender == "floor":
        assert mlgov_report is not None, "the floor replays mlgov's report: run mlgov first"
        return [
            sys.executable,
            str(BENCH / "floor.py"),
            str(mlgov_report),
            "--concurrency",
            str(concurrency),
        ]
    raise ValueError(contender)


@dataclass
class Workspace:
    """The seeded store and what every contender starts from."""

    backend: stores.Backend
    seed_uri: str
    artifacts: Path
    work: Path
    workers: int
    tree: Path = ROOT  # the mlgov source tree under test
    # The deployed requirements alone (`pip install --target`), for mlgov as the Function App
    # runs it; None: mlgov runs in this development environment (its full `mlflow`).
    packages: Path | None = None
    counter: int = 0

    @contextlib.contextmanager
    def fresh_copy(self, label: str) -> Iterator[tuple[str, Path]]:
        """(store URI, folder with its artifacts) of a fresh copy, dropped afterwards."""
        self.counter += 1
        name = f"c{self.counter}_{label}"
        folder = self.work / name
        folder.mkdir(parents=True)
        uri = self.backend.copy(self.seed_uri, name)
        shutil.copytree(self.artifacts, folder / "artifacts")
        try:
            yield uri, folder
        finally:
            self.backend.drop(uri)
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def served(space: Workspace, uri: str, folder: Path, latency_ms: float) -> Iterator[str]:
    """A server on the copy at `uri`, behind a counting proxy: the proxy's URL."""
    log = folder / "server.log"
    with (
        stores.mlflow_server(uri, folder / "artifacts", log, space.workers) as url,
        counting_proxy(url, latency_ms, folder / "proxy.log") as proxied,
    ):
        yield proxied


def run_contender(
    space: Workspace,
    contender: str,
    scenario: str,
    latency_ms: float,
    concurrency: int,
    mlgov_report: Path | None,
    keep: Path,
) -> Measured:
    label = f"{contender}_{scenario}_{int(latency_ms)}"
    keep.mkdir(parents=True, exist_ok=True)
    kept = keep / f"{label}.out"
    with space.fresh_copy(label) as (uri, folder):
        with served(space, uri, folder, latency_ms) as proxied:
            env = base_env(proxied, scenario, concurrency)
            packages = space.packages if contender == "mlgov" else None
            env["PYTHONPATH"] = str(space.tree) if packages is None else f"{packages}:{space.tree}"
            command = command_for(contender, scenario, concurrency, mlgov_report, packages)
            seconds, code, rss, cpu = spawn(command, env, kept, cwd=space.tree)
            stats = proxy_call(proxied)
        if code != 0:  # kept for a look at what went wrong
            for name in ("server.log", "proxy.log"):
                shutil.copyfile(folder / name, keep / f"{label}.{name}")
        state = stores.end_state(uri)
    return Measured(contender, seconds, code, rss, stats, kept, state, cpu)
