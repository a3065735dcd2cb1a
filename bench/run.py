"""`make bench`: seed a workspace, run baseline, floor and mlgov on identical copies behind a
counting proxy, check they reach the same end state, measure the event path, write RESULTS.md.

    .venv/bin/python bench/run.py                          # 10,000 runs (the quick size)
    .venv/bin/python bench/run.py --sizes 10000,100000     # the large size too
    .venv/bin/python bench/run.py --ref HEAD               # mlgov as committed, not the tree

Only the `mlgov` command line, `function_app` and MLflow's REST API are used, so the harness
measures any version of the engine unchanged. Results go between generated markers in
bench/RESULTS.md (text around them is kept); raw numbers, per endpoint, in bench/raw/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

import contenders as C
import events as E
import report as R
import seed as S
import stores

SINGLE_RUN_OVER_S = 600  # a contender slower than this is run once (and marked so)


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def tree_at(ref: str | None) -> Iterator[Path]:
    """The mlgov source under test: this working tree, or `ref` exported read-only."""
    if ref is None:
        yield C.ROOT
        return
    with tempfile.TemporaryDirectory(prefix="mlgov-ref-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(C.ROOT), "archive", ref], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def resolve_concurrency(given: int | None, tree: Path) -> tuple[int, bool]:
    """(concurrency for the floor, whether mlgov gets it explicitly).

    Without `--concurrency`, mlgov runs with its own default, and the floor copies the value
    `mlgov check --json` reports (`concurrency`, once the setting exists; serial before).
    """
    if given is not None:
        return given, True
    env = C.base_env("http://127.0.0.1:9", "full", None)
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        [sys.executable, "-c", C.MLGOV, "check", "--json"],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
    )
    with contextlib.suppress(ValueError, IndexError):
        described = json.loads(done.stdout)
        for value in (
            described.get("concurrency"),
            described.get("default_policy", {}).get("concurrency"),
        ):
            if isinstance(value, int) and value > 0:
                return value, False
    return 1, False


def sweep_matrix(
    space: C.Workspace, args: argparse.Namespace, concurrency: int, explicit: bool, keep: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scenario in args.scenarios:
        for latency in args.latencies:
            runs: dict[str, list[C.Measured]] = {c: [] for c in args.contenders}
            for rep in range(args.reps):
                # The floor replays mlgov's report, so mlgov goes first.
                for contender in [c for c in ("mlgov", "floor", "baseline") if c in runs]:
                    done = runs[contender]
                    if done and done[0].seconds > SINGLE_RUN_OVER_S:
                        continue
                    if contender == "baseline" and len(done) >= args.baseline_reps:
                        continue
                    report = keep / f"mlgov_{scenario}_{int(latency)}.out"
                    given = concurrency if explicit or contender == "floor" else None
                    measured = C.run_contender(
                        space, contender, scenario, latency, given, report, keep
                    )
                    done.append(measured)
                    log(
                        f"{scenario} {latency:g} ms rep {rep + 1}: {contender} "
                        f"{measured.seconds:.1f} s, {measured.requests} requests, "
                        f"exit {measured.exit_code}"
                    )
            reference = runs["mlgov"][0].end_state
            for contender, measured_runs in runs.items():
                diffs = [stores.differences(reference, m.end_state) for m in measured_runs]
                rows.append(_row(scenario, latency, contender, measured_runs, diffs))
            for measured_runs in runs.values():
                for m in measured_runs:
                    m.end_state = {}
    return rows


def _row(
    scenario: str, latency: float, contender: str, runs: list[C.Measured], diffs: list[list[str]]
) -> dict[str, Any]:
    median_run = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    return {
        "scenario": scenario,
        "latency_ms": latency,
        "contender": contender,
        "seconds": statistics.median(m.seconds for m in runs),
        "all_seconds": [round(m.seconds, 2) for m in runs],
        "runs": len(runs),
        "requests": median_run.requests,
        "bytes_read": median_run.proxy["bytes_read"],
        "bytes_sent": median_run.proxy["bytes_sent"],
        "max_in_flight": median_run.proxy["max_in_flight"],
        "peak_rss_mib": max(m.peak_rss_mib for m in runs),
        "cpu_seconds": round(median_run.cpu_seconds, 2),
        "exit_codes": sorted({m.exit_code for m in runs}),
        "same_end_state": all(not d for d in diffs),
        "differences": next((d for d in diffs if d), []),
        "endpoints": median_run.proxy["endpoints"],
    }


def event_path(space: C.Workspace, latency: float, keep: Path) -> dict[str, Any]:
    """Warm (one driver process) and fresh (`mlgov handle-event` per event), then cold start."""
    runs = E.pick_runs(space.seed_uri)
    out: dict[str, Any] = {"latency_ms": latency}
    sequence = E.event_sequence(runs, per_kind=6)
    events_file = keep / "events.json"
    events_file.write_text(json.dumps(sequence))
    tree = space.tree
    driver = [sys.executable, str(C.BENCH / "events.py"), "drive"]

    def run_driver(
        extra: list[str], file: Path, label: str, packages: Path | None = None
    ) -> dict[str, Any]:
        # `packages`: only the deployed requirements importable (`-S`: no site-packages).
        with space.fresh_copy(label) as (uri, folder):
            with C.served(space, uri, folder, latency) as url:
                env = C.base_env(url, "full", None)
                env["PYTHONPATH"] = str(tree) if packages is None else f"{packages}:{tree}"
                out_file = keep / f"{label}.out"
                with out_file.open("wb") as out, out_file.with_suffix(".err").open("wb") as err:
                    python = [sys.executable] if packages is None else [sys.executable, "-S"]
                    command = [*python, *driver[1:], str(file), url, *extra]
                    subprocess.run(command, env=env, cwd=tree, check=True, stdout=out, stderr=err)
            result: dict[str, Any] = json.loads(out_file.read_text().strip().splitlines()[-1])
            # What the events changed: a promotion that registered nothing is not one.
            state = stores.end_state(uri)
            result["versions_registered"] = len(state["versions"])
            result["runs_marked"] = sum(
                "governance.compliance" in t for t in state["tags"].values()
            )
            return result

    warm = run_driver([], events_file, "events_warm")
    out["warm"] = E.medians(warm["events"], skip_first=True)
    out["warm_effect"] = {k: warm[k] for k in ("versions_registered", "runs_marked")}
    out["warm_endpoints"] = {e["kind"]: e["endpoints"] for e in warm["events"][1:4]}
    log(f"event path warm: {out['warm']}")

    # Fresh process: the CLI, one event per process, on one copy (each kind three times).
    fresh: list[dict[str, Any]] = []
    with (
        space.fresh_copy("events_fresh") as (uri, folder),
        C.served(space, uri, folder, latency) as proxied,
    ):
        env = C.base_env(proxied, "full", None)
        env["PYTHONPATH"] = str(tree)
        for index, (kind, raw) in enumerate(sequence[:9]):
            one = keep / f"event-{index}.json"
            one.write_text(json.dumps(raw))
            C.proxy_call(proxied, "reset", "POST")
            command = [sys.executable, "-c", C.MLGOV, "handle-event", str(one), "--json"]
            seconds, code, _, _ = C.spawn(command, env, keep / f"event-{index}.out", cwd=tree)
            stats = C.proxy_call(proxied)
            if code != 0:
                log(f"handle-event {kind} exited {code}: see {keep / f'event-{index}.err'}")
            fresh.append({"kind": kind, "seconds": seconds, "requests": stats["requests"]})
    out["fresh"] = E.medians(fresh, skip_first=False)
    log(f"event path fresh: {out['fresh']}")

    # Cold start: three fresh drivers handling one tagging event, lazy; then eager.
    first = keep / "first-event.json"
    first.write_text(json.dumps([sequence[0]]))
    modules = keep / "modules.json"
    modules.write_text(json.dumps(warm["loaded_by_events"]))
    for mode, extra in (("lazy", []), ("eager", ["--eager", str(modules)])):
        samples = [run_driver(extra, first, f"cold_{mode}") for _ in range(3)]
        out[f"cold_{mode}"] = {
            key: statistics.median(s[key] for s in samples)
            for key in ("import_azure_functions", "import_function_app", "first_event_from_start")
        }
        log(f"cold start {mode}: {out[f'cold_{mode}']}")
    # The same, lazy, with only the deployed requirements importable (mlflow-skinny): what
    # the Function App loads; the development environment's full mlflow imports more.
    packages = space.packages  # installed once for the sweep's mlgov, else here
    if packages is None:
        packages = keep / "deployed-packages"
        shutil.rmtree(packages, ignore_errors=True)
        E.install_deployed(tree / "requirements.txt", sys.executable, packages)
    samples = [run_driver([], first, "cold_deployed", packages) for _ in range(3)]
    if packages != space.packages:
        shutil.rmtree(packages, ignore_errors=True)
    out["cold_deployed"] = {
        key: statistics.median(s[key] for s in samples)
        for key in ("import_azure_functions", "import_function_app", "first_event_from_start")
    }
    log(f"cold start deployed: {out['cold_deployed']}")
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    import mlflow

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
        "load": os.getloadavg(),
    }


def git_label(ref: str | None) -> str:
    described = subprocess.run(
        ["git", "-C", str(C.ROOT), "rev-parse", "--short", ref or "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if ref is not None:
        return f"{ref} ({described})"
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(C.ROOT),
            "status",
            "--porcelain",
            "--",
            "shared",
            "functions",
            "function_app.py",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"working tree at {described}" + (" with uncommitted changes" if dirty else "")


def _contenders(text: str) -> list[str]:
    chosen = [c for c in text.split(",") if c]
    unknown = set(chosen) - set(C.CONTENDERS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown contenders: {sorted(unknown)}")
    return [c for c in C.CONTENDERS if c in chosen or c == "mlgov"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    floats = lambda text: [float(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[10_000])
    parser.add_argument(
        "--latencies", type=floats, default=[0.0, 50.0], help="added ms per request"
    )
    parser.add_argument("--scenarios", type=lambda t: t.split(","), default=list(C.SCENARIOS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--baseline-reps",
        type=int,
        default=None,
        help="runs of the baseline (default: --reps); each row says how many it took",
    )
    parser.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--workers", type=int, default=4, help="mlflow server workers (its default)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="GOVERNANCE_CONCURRENCY for mlgov and the floor",
    )
    parser.add_argument("--ref", default=None, help="measure mlgov as committed at this git ref")
    parser.add_argument(
        "--contenders",
        type=_contenders,
        default=list(C.CONTENDERS),
        help="which of baseline,floor,mlgov (mlgov always runs: the others are checked against it)",
    )
    parser.add_argument(
        "--refuse-filters",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=(),
        help="run filter fields the proxy refuses with INVALID_PARAMETER_VALUE, as Azure ML may "
        "(e.g. attributes.status,attributes.end_time)",
    )
    parser.add_argument(
        "--no-events", action="store_true", help="skip the event path and cold start"
    )
    parser.add_argument(
        "--no-size", action="store_true", help="skip the installed-size measurement"
    )
    parser.add_argument(
        "--mlgov-env",
        default="deployed",
        choices=["deployed", "development"],
        help="mlgov's sweep with only requirements.txt importable, as the Function App runs it "
        "(default), or in this development environment (its full mlflow, pandas included)",
    )
    parser.add_argument("--results", type=Path, default=C.BENCH / "RESULTS.md")
    parser.add_argument("--raw", type=Path, default=C.BENCH / "raw")
    args = parser.parse_args(argv)
    if args.baseline_reps is None:
        args.baseline_reps = args.reps
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    C.REFUSED_FILTERS = args.refuse_filters
    command = " ".join([".venv/bin/python bench/run.py", *argv])
    started = datetime.now(UTC)
    with tree_at(args.ref) as tree, tempfile.TemporaryDirectory(prefix="mlgov-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the PostgreSQL cluster runs as `postgres` and must reach its folder
        concurrency, explicit = resolve_concurrency(args.concurrency, tree)
        backend = stores.backend(args.backend, work / "db")
        context = {
            "machine": machine(),
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "tree": git_label(args.ref),
            "backend": backend.name,
            "workers": args.workers,
            "concurrency": concurrency,
            "concurrency_explicit": explicit,
            "reps": args.reps,
            "refused_filters": list(args.refuse_filters),
            "mlgov_env": args.mlgov_env,
        }
        packages = None
        if args.mlgov_env == "deployed":
            packages = work / "deployed-packages"
            E.install_deployed(tree / "requirements.txt", sys.executable, packages)
        log(f"bench: {context}")
        try:
            for size in args.sizes:
                seed_uri = backend.new_database(f"seed{size}")
                artifacts = work / f"seed{size}-artifacts"
                seeded = S.seed(seed_uri, artifacts, size)
                log(f"seeded {size:,} runs in {seeded.seconds:.1f} s")
                space = C.Workspace(
                    backend, seed_uri, artifacts, work, args.workers, tree, packages
                )
                keep = work / f"keep{size}"
                keep.mkdir(parents=True, exist_ok=True)  # the event path too, with no sweep row
                rows = sweep_matrix(space, args, concurrency, explicit, keep)
                result = {
                    **context,
                    "size": size,
                    "seed": seeded.__dict__ | {"experiment_names": None},
                    "rows": rows,
                }
                if not args.no_events and size == min(args.sizes):
                    result["events"] = event_path(space, 50.0, keep)
                if not args.no_size and size == min(args.sizes):
                    result["installed_mib"] = E.installed_size_mib(
                        tree / "requirements.txt", sys.executable
                    )
                    log(f"installed size {result['installed_mib']:.0f} MiB")
                result["load_after"] = os.getloadavg()
                args.raw.mkdir(parents=True, exist_ok=True)
                (args.raw / f"{size}-{backend.name}.json").write_text(
                    json.dumps(result, indent=1, default=str)
                )
                R.write(args.results, result)
                log(f"{size:,} runs: written to {args.results}")
                shutil.rmtree(keep, ignore_errors=True)
        finally:
            backend.close()
    log(f"done in {(time.time() - started.timestamp()) / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1:])
