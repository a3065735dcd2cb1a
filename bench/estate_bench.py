"""The estate benchmark: W workspaces of N runs each (a real `mlflow server` each, behind the
counting proxy's fixed latency), swept in-process by `EstateApp.sweep` with the fan-out's
parallelism (every workspace at once, as the queue runs them on separate instances) against
one workspace after another.

    python bench/estate_bench.py --workspaces 10 --runs 10000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import contenders as C  # noqa: E402
import seed as S  # noqa: E402
import stores  # noqa: E402

SUB = "11111111-2222-3333-4444-555555555555"


def arm_id(index: int) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/rg-bench"
        f"/providers/Microsoft.MachineLearningServices/workspaces/mlw-bench-{index:02d}"
    )


def sweep_estate(urls: list[str], parallelism: int) -> dict[str, Any]:
    """One in-process estate sweep over `urls` (member i is served by urls[i])."""
    from shared.app.estate import EstateApp
    from shared.estate import Member
    from shared.notify.sinks import Channel, MemoryCardSink
    from shared.settings import load_settings
    from shared.tracking.mlflow_gateway import MlflowGateway

    values = {
        **C.SCENARIOS["full"],
        "GOVERNANCE_WORKSPACES": ",".join(arm_id(i) for i in range(len(urls))),
    }
    by_name = {f"mlw-bench-{i:02d}": url for i, url in enumerate(urls)}

    def factory(member: Member) -> MlflowGateway:
        return MlflowGateway(by_name[member.name])

    estate = EstateApp(
        load_settings(values),
        factory,
        Channel(MemoryCardSink(), "memory"),
        parallelism=parallelism,
    )
    started = time.perf_counter()
    swept = estate.sweep()
    seconds = time.perf_counter() - started
    counts = swept.report.counts()
    return {
        "parallelism": parallelism,
        "seconds": round(seconds, 2),
        "exit_code": swept.exit_code,
        "failed_workspaces": [s.member.name for s in swept.failed],
        "decisions": len(swept.report.records),
        "applied": counts["applied"],
    }


def run_mode(seed_uri: str, root: Path, workspaces: int, latency: float, parallelism: int):
    """Fresh copies of the seed, a server and a proxy each, one estate sweep over them."""
    backend = stores.SqliteBackend(root)
    with contextlib.ExitStack() as stack:
        urls: list[str] = []
        requests = 0
        proxies: list[str] = []
        for index in range(workspaces):
            label = f"p{parallelism}-w{index:02d}"
            folder = root / label
            folder.mkdir()
            uri = backend.copy(seed_uri, label)
            server = stack.enter_context(
                stores.mlflow_server(uri, root / "artifacts", folder / "server.log", 1)
            )
            proxied = stack.enter_context(C.counting_proxy(server, latency, folder / "proxy.log"))
            proxies.append(proxied)
            urls.append(proxied)
        result = sweep_estate(urls, parallelism)
        for proxied in proxies:
            requests += int(C.proxy_call(proxied)["requests"])
        result["requests"] = requests
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10_000, help="runs per workspace")
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mlgov-estate-bench-"))
    try:
        seed_uri = f"sqlite:///{root / 'seed.db'}"
        seeded = S.seed(seed_uri, root / "artifacts", args.runs)
        results = {
            "workspaces": args.workspaces,
            "runs_per_workspace": args.runs,
            "latency_ms": args.latency_ms,
            "seeded_in_s": round(seeded.seconds, 1),
            "one_after_another": run_mode(
                seed_uri, root, args.workspaces, args.latency_ms, parallelism=1
            ),
            "fan_out": run_mode(
                seed_uri, root, args.workspaces, args.latency_ms, parallelism=args.workspaces
            ),
        }
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
