from __future__ import annotations

from tests.support import make_run


def test_server_round_trip(client, experiment):
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id, metrics={"auc_roc": 0.9}, model=True)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["auc_roc"] == 0.9
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/MLmodel"]
