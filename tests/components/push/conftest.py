"""Shards and three logged models of known quality (poor < good < perfect), each with its metrics.json."""

import itertools

import pytest

from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.evaluate.core import evaluate
from tests.components.evaluate.builders import decoder_model, graded_split, logged_model_folder, write_shards

CHANNELS = {"perfect": 0, "good": 1, "poor": 2}
_names = itertools.count()


@pytest.fixture(scope="session")
def push_shards(tmp_path_factory):
    split = graded_split(count=4, height=16, width=32, seed=3)
    return write_shards(tmp_path_factory.mktemp("push-shards"), {"val": (split["images"], split["masks"])})


@pytest.fixture(scope="session")
def candidates(mlflow_server, push_shards, tmp_path_factory):
    """name -> {"model", "metrics" (metrics.json path), "cache_dir", scores}, logged to the test server."""
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    root = tmp_path_factory.mktemp("candidates")
    cache_dir = str(tmp_path_factory.mktemp("model-cache"))
    result = {}
    for name, channel in CHANNELS.items():
        folder, _ = logged_model_folder(
            decoder_model(16, 32, channel=channel), root / name, saved_model=name == "good"
        )
        scores = evaluate(
            EvaluateConfig(
                data=str(push_shards), model=str(folder), out=str(root / f"{name}-eval"), log_to_mlflow=False
            )
        )
        metrics = str(root / f"{name}-eval" / "metrics.json")
        result[name] = {"model": str(folder), "metrics": metrics, "cache_dir": cache_dir, **scores}
    assert result["poor"]["mean_dice"] < result["good"]["mean_dice"] < result["perfect"]["mean_dice"] == 1.0
    return result


@pytest.fixture
def model_name(mlflow_uri, request):
    """A registered-model name of this test alone (the MLflow server is shared by the session)."""
    return f"push-{request.node.name[:40]}-{next(_names)}"
