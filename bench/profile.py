"""Profile one `mlgov sweep` of a seeded workspace, behind the same counting proxy as `make bench`.

    .venv/bin/python bench/profile.py --size 10000 --scenario cleanup --latency 50 --ref HEAD
    .venv/bin/python bench/profile.py --tool py-spy      # every thread, sampled from outside

pyinstrument (the default) samples the main thread by wall clock, so the time the sweep waits
on its pool or on a response shows where it is spent; py-spy (`--idle`, every thread) shows
the pool's workers too; `--tool py-spy-cpu` samples only the thread holding the GIL
(`--gil`), as collapsed stacks: where the sweep's own Python CPU time goes. The profile,
mlgov's report and the proxy's counts go to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contenders as C
import run as B
import seed as S
import stores


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--scenario", default="cleanup", choices=list(C.SCENARIOS))
    parser.add_argument("--latency", type=float, default=50.0, help="added ms per request")
    parser.add_argument("--concurrency", type=int, default=None, help="GOVERNANCE_CONCURRENCY")
    parser.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--ref", default=None, help="profile mlgov as committed at this git ref")
    tools = ["pyinstrument", "py-spy", "py-spy-cpu"]
    parser.add_argument("--tool", default="pyinstrument", choices=tools)
    parser.add_argument("--out", type=Path, default=C.BENCH / "raw" / "profile")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the sweep runs in the tree under test
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.scenario}_{args.size}_{int(args.latency)}ms_{args.tool}"
    with B.tree_at(args.ref) as tree, tempfile.TemporaryDirectory(prefix="mlgov-prof-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the PostgreSQL cluster runs as `postgres` and must reach its folder
        backend = stores.backend(args.backend, work / "db")
        try:
            seed_uri = backend.new_database(f"seed{args.size}")
            seeded = S.seed(seed_uri, work / "artifacts", args.size)
            B.log(f"seeded {args.size:,} runs in {seeded.seconds:.1f} s")
            space = C.Workspace(backend, seed_uri, work / "artifacts", work, args.workers, tree)
            with (
                space.fresh_copy("profile") as (uri, folder),
                C.served(space, uri, folder, args.latency) as url,
            ):
                env = C.base_env(url, args.scenario, args.concurrency)
                env["PYTHONPATH"] = str(tree)
                sweep = [C.MLGOV, "sweep", "--json"]
                bin_dir = C.VENV_BIN
                if args.tool == "pyinstrument":
                    profile = args.out / f"{stem}.txt"
                    command = [str(bin_dir / "pyinstrument"), "-r", "text", "--no-color"]
                    command += ["-o", str(profile), "-c", *sweep]
                elif args.tool == "py-spy-cpu":
                    # Only the thread holding the GIL (`--gil`), as collapsed stacks: where the
                    # process spends its Python CPU time, not where it waits.
                    profile = args.out / f"{stem}.collapsed.txt"
                    command = [str(bin_dir / "py-spy"), "record", "--gil", "-r", "200", "-f", "raw"]
                    command += ["-o", str(profile), "--", sys.executable, "-c", *sweep]
                else:
                    profile = args.out / f"{stem}.speedscope.json"
                    command = [str(bin_dir / "py-spy"), "record", "--idle", "-r", "200"]
                    command += ["-f", "speedscope", "-o", str(profile), "--"]
                    command += [sys.executable, "-c", *sweep]
                started = time.perf_counter()
                seconds, code, rss, _ = C.spawn(command, env, args.out / f"{stem}.out", cwd=tree)
                stats = C.proxy_call(url)
            summary = {
                "seconds": round(seconds, 2),
                "wall_s": round(time.perf_counter() - started, 2),
                "exit_code": code,
                "peak_rss_mib": round(rss),
                "ref": B.git_label(args.ref),
                **{k: stats[k] for k in ("requests", "bytes_read", "max_in_flight")},
                "endpoints": {k: v["requests"] for k, v in stats["endpoints"].items()},
            }
            (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
            B.log(f"profiled: {summary}; profile in {profile}")
        finally:
            backend.close()


if __name__ == "__main__":
    main(sys.argv[1:])
