"""`mlgov demo`: seed an embedded store with a churn-model study, then govern it.

Needs the full `mlflow` package (SQLite store) and scikit-learn, as a dev install has.
Models are trained for real on synthetic data, so the metrics are real metrics.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import UsageError

MARKER = ".mlgov-demo"
EXPERIMENT = "customer-churn"

# The policy the demo runs with: it overrides whatever the environment says.
DEMO_ENV = {
    "GOVERNANCE_EXPERIMENTS": "customer-churn*",
    "GOVERNANCE_REQUIRED_TAGS": "owner,dataset_version",
    "GOVERNANCE_TAG_DEFAULTS": '{"owner": "{user}"}',
    "GOVERNANCE_PROMOTION_METRIC": "auc_roc",
    "GOVERNANCE_PROMOTION_THRESHOLD": "0.80",
    "GOVERNANCE_PROMOTION_MODEL_NAME": "{experiment_name}-classifier",
    "GOVERNANCE_CLEANUP_STATUSES": "FAILED,KILLED",
    "GOVERNANCE_CLEANUP_AFTER_HOURS": "72",
    "GOVERNANCE_CATCHUP_HOURS": "240",
    "GOVERNANCE_SUMMARY_WINDOW_HOURS": "240",
}


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run the demo creates: what it trains, on which features, how it ends."""

    family: str
    params: dict[str, Any]
    status: str
    user: str
    hours_ago: float
    dataset: str = "v2"
    # Whether the run records its dataset version (a required tag in the demo policy).
    tagged: bool = True
    tags: dict[str, str] = field(default_factory=dict)


# Dataset versions add features: v1 tenure and monthly charge, v2 support tickets, v3 contract.
FEATURES = {"v1": [0, 1], "v2": [0, 1, 2], "v3": [0, 1, 2, 3]}

# The study so far: the sweep governs these.
PLAN: tuple[PlannedRun, ...] = (
    PlannedRun("logistic_regression", {"C": 0.1}, "FINISHED", "ana", 200, "v1"),
    PlannedRun("logistic_regression", {"C": 1.0}, "FINISHED", "ana", 150, "v1"),
    PlannedRun("random_forest", {"max_depth": 4, "n_estimators": 40}, "FINISHED", "ben", 120),
    PlannedRun(
        "random_forest", {"max_depth": 8, "n_estimators": 60}, "FINISHED", "ben", 96, tagged=False
    ),
    PlannedRun(
        "gradient_boosting", {"learning_rate": 0.1, "n_estimators": 60}, "FINISHED", "chen", 30
    ),
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 0.3, "n_estimators": 80},
        "FINISHED",
        "chen",
        6,
        tags={"owner": "ml-platform"},
    ),
    PlannedRun("random_forest", {"max_depth": 30, "n_estimators": 500}, "FAILED", "ben", 130),
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 2.0, "n_estimators": 10},
        "FAILED",
        "chen",
        100,
        tags={"governance.keep": "true"},
    ),
    PlannedRun("logistic_regression", {"C": 100.0}, "KILLED", "ana", 90, tagged=False),
    PlannedRun("random_forest", {"max_depth": 12, "n_estimators": 80}, "FAILED", "ben", 2),
)

# Runs that finish while the demo watches: their events go through the event path.
EVENT_PLAN: tuple[PlannedRun, ...] = (
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 0.1, "n_estimators": 60},
        "FINISHED",
        "chen",
        0.2,
        "v3",
    ),
    PlannedRun("random_forest", {"max_depth": 30, "n_estimators": 500}, "FAILED", "ben", 0.1, "v3"),
)


@dataclass(frozen=True, slots=True)
class SeededRun:
    run_id: str
    name: str
    status: str


def _data() -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(7)
    n = 1500
    tenure = rng.integers(1, 72, n)
    monthly = rng.normal(70, 25, n).clip(15, 150)
    tickets = rng.poisson(1.2, n)
    contract = rng.integers(0, 3, n)
    logit = 0.5 - 0.09 * tenure + 0.03 * monthly + 0.9 * tickets - 1.6 * contract
    churn = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = np.column_stack([tenure, monthly, tickets, contract])
    return tuple(train_test_split(features, churn, test_size=0.3, random_state=7))


def _model(family: str, params: dict[str, Any]) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if family == "logistic_regression":
        return LogisticRegression(max_iter=500, **params)
    if family == "random_forest":
        return RandomForestClassifier(random_state=7, **params)
    return GradientBoostingClassifier(random_state=7, **params)


def prepare_folder(folder: Path) -> None:
    """A fresh folder: created, or emptied when an earlier demo made it."""
    if folder.exists():
        if not (folder / MARKER).exists():
            raise UsageError(
                f"{folder} exists and was not made by `mlgov demo`; choose another --dir"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by mlgov demo; safe to delete\n", encoding="utf-8")


def create_experiment(tracking_uri: str, artifacts: Path) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_id: str = client.create_experiment(
        EXPERIMENT, artifact_location=(artifacts / EXPERIMENT).as_uri()
    )
    return experiment_id


def seed(
    tracking_uri: str,
    experiment_id: str,
    plan: tuple[PlannedRun, ...],
    now: datetime,
    *,
    first_index: int = 1,
    say: Callable[[str], None] = print,
) -> list[SeededRun]:
    """Train and log the planned runs; a finished run logs its metrics and its model."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    # `log_model` needs the fluent API's global URI, which MLflow also exports to the
    # environment: put both back afterwards so nothing else in the process sees the demo store.
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return _seed_runs(client, experiment_id, plan, now, first_index, say)
    finally:
        # None unsets it again, although the stubs only admit a string or a path.
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]


def _seed_runs(
    client: Any,
    experiment_id: str,
    plan: tuple[PlannedRun, ...],
    now: datetime,
    first_index: int,
    say: Callable[[str], None],
) -> list[SeededRun]:
    import mlflow
    import mlflow.sklearn
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    x_train, x_test, y_train, y_test = _data()
    seeded: list[SeededRun] = []
    for index, planned in enumerate(plan, start=first_index):
        started = now - timedelta(hours=planned.hours_ago)
        name = f"{planned.family.replace('_', '-')}-{index:02d}"
        tags = {"mlflow.user": planned.user, "model_family": planned.family, **planned.tags}
        if planned.tagged:
            tags["dataset_version"] = planned.dataset
        run = client.create_run(
            experiment_id, start_time=int(started.timestamp() * 1000), tags=tags, run_name=name
        )
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[
                mlflow.entities.Param(k, str(v))  # type: ignore[no-untyped-call]
                for k, v in {**planned.params, "features": planned.dataset}.items()
            ],
        )
        if planned.status == "FINISHED":
            columns = FEATURES[planned.dataset]
            model = _model(planned.family, planned.params).fit(x_train[:, columns], y_train)
            scores = model.predict_proba(x_test[:, columns])[:, 1]
            metrics = {
                "accuracy": accuracy_score(y_test, scores > 0.5),
                "f1_score": f1_score(y_test, scores > 0.5),
                "auc_roc": roc_auc_score(y_test, scores),
            }
            for key, value in metrics.items():
                client.log_metric(run_id, key, float(value))
            with mlflow.start_run(run_id=run_id):
                # The demo trains these trees itself: their node storage is trusted.
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    skops_trusted_types=["sklearn.tree._tree.Tree"],
                    # Given, not inferred: inference imports the model in a subprocess (slow).
                    pip_requirements=["scikit-learn"],
                )
            detail = f"auc_roc={metrics['auc_roc']:.4f}"
        else:
            detail = "no model"
        ended = started + timedelta(minutes=min(12.0, planned.hours_ago * 60 / 2))
        client.set_terminated(run_id, planned.status, end_time=int(ended.timestamp() * 1000))
        dataset = planned.dataset if planned.tagged else "(untagged)"
        say(
            f"  {name:<24} {planned.status:<9} by {planned.user:<5} "
            f"{_ago(planned.hours_ago):>10}  data {dataset:<10} {detail}"
        )
        seeded.append(SeededRun(run_id, name, planned.status))
    return seeded


def _ago(hours: float) -> str:
    return f"{hours:.0f} h ago" if hours >= 1 else f"{hours * 60:.0f} min ago"


def run_events(experiment_id: str, runs: list[SeededRun], now: datetime) -> list[dict[str, Any]]:
    """The events Azure ML would publish for these runs, in the documented shapes.

    A success as `RunCompleted` in the Event Grid schema; a failure as `RunStatusChanged`
    in CloudEvents 1.0 (Azure ML spells the status `Failed`).
    """
    topic = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg/providers/"
        "Microsoft.MachineLearningServices/workspaces/demo-workspace"
    )
    events: list[dict[str, Any]] = []
    for number, run in enumerate(runs, start=1):
        data: dict[str, Any] = {
            "experimentId": experiment_id,
            "experimentName": EXPERIMENT,
            "runId": run.run_id,
            "runType": None,
            "runTags": {"mlflow.runName": run.name},
            "runProperties": {},
        }
        subject = f"experiments/{experiment_id}/runs/{run.run_id}"
        stamp = now.isoformat().replace("+00:00", "Z")
        if run.status == "FINISHED":
            events.append(
                {
                    "id": f"demo-event-{number}",
                    "topic": topic,
                    "subject": subject,
                    "eventType": "Microsoft.MachineLearningServices.RunCompleted",
                    "eventTime": stamp,
                    "data": data,
                    "dataVersion": "",
                    "metadataVersion": "1",
                }
            )
        else:
            events.append(
                {
                    "id": f"demo-event-{number}",
                    "source": topic,
                    "subject": subject,
                    "type": "Microsoft.MachineLearningServices.RunStatusChanged",
                    "time": stamp,
                    "specversion": "1.0",
                    "data": {**data, "runStatus": run.status.capitalize()},
                }
            )
    return events


def env_file(env: dict[str, str]) -> str:
    """The demo's settings as a file a POSIX shell can source (`set -a; . FILE; set +a`)."""
    lines = [f"{key}='{value}'" for key, value in env.items()]
    return "\n".join(lines) + "\n"
