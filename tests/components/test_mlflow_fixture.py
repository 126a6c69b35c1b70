import mlflow


def test_mlflow_server_round_trips_a_run(mlflow_uri):
    mlflow.set_experiment("fixture-check")
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.5)
    assert mlflow.get_run(run.info.run_id).data.metrics["x"] == 1.5
