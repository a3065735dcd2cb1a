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

from shared.bootstrap import build_gateway, utcnow
from shared.cli.common import Command, emit
from shared.engine.report import Report
from shared.notify.sinks import Channel
from shared.notify.teams import FileCardSink
from shared.settings import load_settings
from shared.tracking.gateway import TrackingGateway


def _heading(text: str) -> None:
    print(f"\n== {text}")


def _card(report: Report, gateway: TrackingGateway, path: Path, *, cap: int = 0) -> None:
    from shared.usecases.notifications import notify

    delivery = notify(report, Channel(FileCardSink(path), f"file {path}"), gateway, cap=cap)
    if delivery is not None and delivery.ok:
        print(f"Teams card: {path}")


def run(args: argparse.Namespace) -> int:
    from shared import demo
    from shared.events import parse_events
    from shared.notify.cards import summary_card
    from shared.usecases.notifications import deliver
    from shared.usecases.run_event import handle_events
    from shared.usecases.summary import summarize
    from shared.usecases.sweep import sweep

    folder: Path = args.dir.resolve()
    demo.prepare_folder(folder)
    cards = folder / "cards"
    cards.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, **demo.DEMO_ENV}
    (folder / "demo.env").write_text(demo.env_file(env), encoding="utf-8")
    settings = load_settings(env)
    gateway = build_gateway(settings)
    now = utcnow()
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
    report = sweep(gateway, settings, now)
    codes.append(emit(report, args))
    _card(report, gateway, cards / "sweep.json", cap=settings.cleanup_max_runs)

    _heading("3. Two runs finish now, and Azure ML publishes their events")
    finished = demo.seed(uri, experiment_id, demo.EVENT_PLAN, now, first_index=len(demo.PLAN) + 1)
    events_path = folder / "events.json"
    events_path.write_text(
        json.dumps(demo.run_events(experiment_id, finished, now), indent=2), encoding="utf-8"
    )
    print(f"Events (Event Grid and CloudEvents schemas): {events_path}")
    events, _ = parse_events(events_path.read_text(encoding="utf-8"))
    report = handle_events(events, gateway, settings, now)
    codes.append(emit(report, args))
    _card(report, gateway, cards / "events.json")

    _heading("4. The same events again (Event Grid delivers at least once): nothing twice")
    codes.append(emit(handle_events(events, gateway, settings, now), args))

    _heading("5. The summary for the last 240 hours, as the weekday timer posts it")
    result = summarize(gateway, settings, now)
    print("  " + ", ".join(f"{k}: {v}" for k, v in result.summary.totals.items()))
    summary_path = cards / "summary.json"
    deliver(result.report, [summary_card(result.summary)], Channel(FileCardSink(summary_path), ""))
    print(f"Teams card: {summary_path}")

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
