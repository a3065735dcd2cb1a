"""`mlgov demo`: seed an embedded local store and run the governance cycle on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.bootstrap import build_gateway, utcnow
from shared.cli.common import Command, emit
from shared.settings import load_settings


def run(args: argparse.Namespace) -> int:
    from shared.demo import DEMO_ENV, prepare_folder, seed

    folder: Path = args.dir.resolve()
    prepare_folder(folder)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, **DEMO_ENV}
    settings = load_settings(env)
    now = utcnow()

    print(f"Embedded MLflow store: {uri}")
    print("Demo policy:")
    for key, value in DEMO_ENV.items():
        print(f"  {key}={value}")
    print("\nSeeding experiment 'customer-churn' (models trained on synthetic data):")
    seed(uri, folder / "artifacts", now)

    from shared.usecases.sweep import sweep

    print("\nSweep (what the timer runs every 30 minutes):")
    report = sweep(build_gateway(settings), settings, now)
    code = emit(report, args)
    print(
        f"\nLook around: mlflow ui --backend-store-uri {uri}\n"
        f"Try a policy: MLFLOW_TRACKING_URI={uri} mlgov sweep --dry-run\n"
        f"Undo the cleanup: MLFLOW_TRACKING_URI={uri} mlgov restore --since 1"
    )
    return code


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("mlgov-demo"),
        help="folder for the embedded store (default: ./mlgov-demo, replaced on each run)",
    )
    parser.add_argument("--json", action="store_true", help="print the sweep report as JSON")


COMMAND = Command(
    name="demo",
    help="seed an embedded local store and run everything on it",
    configure=configure,
    run=run,
)
