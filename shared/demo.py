"""`mlgov demo`: seed an embedded store with a churn-model study, then govern it.

Needs the full `mlflow` package (SQLite store) and scikit-learn, as a dev install has.
Models are trained for real on synthetic data, so the metrics are real metrics.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import GovernanceError

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
}


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run the demo creates: what it trains, how it ends, which tags it carries."""

    family: str
    params: dict[str, Any]
    status: str
    user: str
    hours_ago: float
    tags: dict[str, str] = field(default_factory=dict)


PLAN: tuple[PlannedRun, ...] = (
    PlannedRun(
        "logistic_regression", {"C": 0.1}, "FINISHED", "ana", 200, {"dataset_version": "v1"}
    ),
    PlannedRun(
        "logistic_regression", {"C": 1.0}, "FINISHED", "ana", 150, {"dataset_version": "v1"}
    ),
    PlannedRun(
        "random_forest",
        {"max_depth": 4, "n_estimators": 40},
        "FINISHED",
        "ben",
        120,
        {"dataset_version": "v2"},
    ),
    PlannedRun("random_forest", {"max_depth": 8, "n_estimators": 60}, "FINISHED", "ben", 96, {}),
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 0.1, "n_estimators": 60},
        "FINISHED",
        "chen",
        30,
        {"dataset_version": "v2"},
    ),
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 0.3, "n_estimators": 80},
        "FINISHED",
        "chen",
        6,
        {"dataset_version": "v2", "owner": "ml-platform"},
    ),
    PlannedRun(
        "random_forest",
        {"max_depth": 30, "n_estimators": 500},
        "FAILED",
        "ben",
        130,
        {"dataset_version": "v2"},
    ),
    PlannedRun(
        "gradient_boosting",
        {"learning_rate": 2.0, "n_estimators": 10},
        "FAILED",
        "chen",
        100,
        {"dataset_version": "v2", "governance.keep": "true"},
    ),
    PlannedRun("logistic_regression", {"C": 100.0}, "KILLED", "ana", 90, {}),
    PlannedRun(
        "random_forest",
        {"max_depth": 12, "n_estimators": 80},
        "FAILED",
        "ben",
        2,
        {"dataset_version": "v2"},
    ),
)


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
            raise GovernanceError(
                f"{folder} exists and was not made by `mlgov demo`; choose another --dir"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by mlgov demo; safe to delete\n", encoding="utf-8")


def seed(
    tracking_uri: str, artifacts: Path, now: datetime, say: Callable[[str], None] = print
) -> str:
    """Create the experiment and its runs; returns the experiment id."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    client = MlflowClient(tracking_uri)
    experiment_id: str = client.create_experiment(
        EXPERIMENT, artifact_location=(artifacts / EXPERIMENT).as_uri()
    )
    x_train, x_test, y_train, y_test = _data()
    mlflow.set_tracking_uri(tracking_uri)
    for index, planned in enumerate(PLAN, start=1):
        started = now - timedelta(hours=planned.hours_ago)
        name = f"{planned.family.replace('_', '-')}-{index:02d}"
        tags = {"mlflow.user": planned.user, "model_family": planned.family, **planned.tags}
        run = client.create_run(
            experiment_id, start_time=int(started.timestamp() * 1000), tags=tags, run_name=name
        )
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[
                mlflow.entities.Param(k, str(v))  # type: ignore[no-untyped-call]
                for k, v in planned.params.items()
            ],
        )
        if planned.status == "FINISHED":
            model = _model(planned.family, planned.params).fit(x_train, y_train)
            scores = model.predict_proba(x_test)[:, 1]
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
        ended = started + timedelta(minutes=12)
        client.set_terminated(run_id, planned.status, end_time=int(ended.timestamp() * 1000))
        say(
            f"  {name:<24} {planned.status:<9} by {planned.user:<5} "
            f"{planned.hours_ago:>4.0f} h ago  {detail}"
        )
    return experiment_id
