"""`mlgov demo`: seed an embedded local store and run everything on it, step by step.

The sweep, two run events (one replayed, as Event Grid may), and the summary; each step's
Teams card is written to `<dir>/cards/` instead of being posted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from shared.app import App, Outcome, utcnow
from shared.bootstrap import build_app
from shared.cli.common import Command, emit
from shared.notify.sinks import Channel
from shared.notify.teams import FileCardSink
from shared.settings import load_settings


def _heading(text: str) -> None:
    print(f"\n== {text}")


def _to_file(app: App, path: Path) -> App:
    """The app with this step's card kept in `path` instead of posted."""
    return app.with_channel(Channel(FileCardSink(path), f"file {path}"))


def _shown(outcome: Outcome, args: argparse.Namespace, path: Path) -> int:
    code = emit(outcome.report, args)
    if outcome.delivered:
        print(f"Teams card: {path}")
    return code


def run(args: argparse.Namespace) -> int:
    from shared import demo

    folder: Path = args.dir.resolve()
    demo.prepare_folder(folder)
    cards = folder / "cards"
    cards.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, **demo.DEMO_ENV}
    (folder / "demo.env").write_text(demo.env_file(env), encoding="utf-8")
    # One moment for the whole story: the seeded runs' ages are relative to it.
    now = utcnow()
    app = build_app(load_settings(env), clock=lambda: now)
    codes: list[int] = []

    print(f"Embedded MLflow store: {uri}")
    print("Demo policy (also in demo.env):")
    for key, value in demo.DEMO_ENV.items():
        print(f"  {key}={value}")

    _heading(
        f"1. A churn-model study in experiment '{demo.EXPERIMENT}' (real models, synthetic data)"
    )
    experiment_id = demo.create_experiment(uri, folder / "artifacts")
    demo.seed(uri, experiment_id, demo.PLAN, now)

    _heading("2. The sweep, as the timer runs it: cleanup, then tags, promotion and alerts")
    path = cards / "sweep.json"
    codes.append(_shown(_to_file(app, path).sweep(), args, path))

    _heading("3. Two runs finish now, and Azure ML publishes their events")
    finished = demo.seed(uri, experiment_id, demo.EVENT_PLAN, now, first_index=len(demo.PLAN) + 1)
    events_path = folder / "events.json"
    events_path.write_text(
        json.dumps(demo.run_events(experiment_id, finished, now), indent=2), encoding="utf-8"
    )
    print(f"Events (Event Grid and CloudEvents schemas): {events_path}")
    events = events_path.read_text(encoding="utf-8")
    path = cards / "events.json"
    codes.append(_shown(_to_file(app, path).handle_events(events), args, path))

    _heading("4. The same events again (Event Grid delivers at least once): nothing twice")
    path = cards / "replay.json"  # stays unwritten: the replay has nothing to say
    codes.append(_shown(_to_file(app, path).handle_events(events), args, path))

    _heading("5. The summary for the last 240 hours, as the weekday timer posts it")
    path = cards / "summary.json"
    outcome = _to_file(app, path).summary()
    print("  " + ", ".join(f"{k}: {v}" for k, v in outcome.summary.totals.items()))
    if outcome.delivered:
        print(f"Teams card: {path}")

    mlgov = _invocation()
    print(
        "\nLook around:  mlflow ui --backend-store-uri " + uri + "\n"
        f"Try a policy: set -a; . {folder / 'demo.env'}; set +a; {mlgov} sweep --dry-run\n"
        f"Undo cleanup: (same settings) {mlgov} restore --since 1\n"
        f"Post cards:   GOVERNANCE_TEAMS_WEBHOOK_URL=<Workflows URL> {mlgov} summary"
    )
    return max(codes)


def _invocation() -> str:
    """How to call mlgov again: bare when it is on PATH, else the path this run used."""
    if shutil.which("mlgov"):
        return "mlgov"
    used = Path(sys.argv[0])
    if used.name != "mlgov":
        return "mlgov"
    try:
        return str(used.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(used)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("mlgov-demo"),
        help="folder for the embedded store (default: ./mlgov-demo, replaced on each run)",
    )
    parser.add_argument("--json", action="store_true", help="print each report as JSON")


COMMAND = Command(
    name="demo",
    help="seed an embedded local store and run everything on it",
    configure=configure,
    run=run,
)
