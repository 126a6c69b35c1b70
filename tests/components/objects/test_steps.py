"""Train, evaluate and push the object classifier on tiny synthetic crops, against a real MLflow server."""

import json
from pathlib import Path

import pytest

from cityseg.components.objects.config import ObjectsEvaluateConfig, ObjectsPushConfig, ObjectsTrainConfig
from cityseg.components.objects.evaluate import evaluate, load_classifier
from cityseg.components.objects.push import push
from cityseg.components.objects.train import train
from cityseg.components.push import registry

pytestmark = pytest.mark.slow
NAME = "objects-test"


def _train_and_evaluate(crops: Path, out: Path, mlflow_uri: str, seed: int) -> tuple[dict, dict]:
    config = ObjectsTrainConfig(
        str(crops), str(out / "model"), epochs=1, batch_size=32, width=4, seed=seed, tracking_uri=mlflow_uri
    )
    info = train(config)
    result = evaluate(
        ObjectsEvaluateConfig(str(out / "model"), str(crops), str(out / "eval"), tracking_uri=mlflow_uri)
    )
    return info, result


@pytest.fixture(scope="module")
def trained(crops, tmp_path_factory, mlflow_server) -> tuple[Path, dict, dict]:
    """A classifier trained and evaluated in a/, and an untrained one of the same shape in b/model."""
    from cityseg.components.objects.model import build_classifier

    root = tmp_path_factory.mktemp("trained")
    info, result = _train_and_evaluate(crops, root / "a", mlflow_server, seed=0)
    (root / "b/model").mkdir(parents=True)
    build_classifier(16, 8, width=4).save(root / "b/model/model.keras")
    return root, info, result


def test_train_evaluate_push_and_the_gates(crops, trained, mlflow_uri):
    tmp_path, info, result = trained
    assert info["mlflow_run_id"] and info["size"] == 16 and info["class_weighting"] == "balanced"
    assert set(json.loads((tmp_path / "a/model/train_info.json").read_text())) >= {
        "mlflow_run_id",
        "data_manifest_hash",
    }
    metrics = json.loads((tmp_path / "a/eval/metrics.json").read_text())
    assert metrics["mlflow_run_id"] == info["mlflow_run_id"]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["examples"] == result["examples"]
    correct = sum(metrics["confusion_matrix"][i][i] for i in range(8))
    assert metrics["accuracy"] == pytest.approx(correct / metrics["examples"])
    report = (tmp_path / "a/eval/report.html").read_text()
    assert report.count("data:image/png;base64,") == len(metrics["errors"]) > 0

    first = push(_push_config(tmp_path / "a", crops, mlflow_uri, min_macro_f1=0.0))
    assert first.blessed and first.aliases == ("champion",) and "no champion; macro_f1" in first.reason
    assert registry.version_tags(NAME, first.version)["eval_macro_f1"] == f"{metrics['macro_f1']:.6g}"
    # The registered version carries its train_info.json: the server cuts crops with its margin.
    loaded = load_classifier(f"models:/{NAME}@champion", str(tmp_path / "cache"))
    assert loaded.version == first.version
    assert loaded.train_info["crop_margin"] == info["crop_margin"]
    assert loaded.train_info["mlflow_run_id"] == info["mlflow_run_id"]
    registered = ObjectsPushConfig(
        **{
            **_push_config(tmp_path / "a", crops, mlflow_uri).__dict__,
            "model": f"models:/{NAME}/{first.version}",
        }
    )
    again = push(registered)
    assert again.version == first.version and again.reason == f"v{first.version} is already the champion"

    # The same weights again, as a new version: no gain over the champion, re-scored on the same crops.
    second = push(_push_config(tmp_path / "a", crops, mlflow_uri, min_macro_f1=0.0, min_improvement=0.5))
    assert not second.blessed and second.reason.startswith("change gate: macro_f1")
    assert second.champion_version == first.version
    assert second.champion_macro_f1 == pytest.approx(metrics["macro_f1"])
    assert registry.alias_version(NAME, registry.CHAMPION) == first.version
    refused = push(_push_config(tmp_path / "a", crops, mlflow_uri, min_macro_f1=1.0))
    assert not refused.blessed and refused.reason.startswith("absolute gate: macro_f1")


def test_push_refuses_another_models_metrics(crops, trained, mlflow_uri):
    tmp_path, _, _ = trained
    config = _push_config(tmp_path / "b", crops, mlflow_uri, min_macro_f1=0.0)
    config = ObjectsPushConfig(**{**config.__dict__, "metrics": str(tmp_path / "a/eval/metrics.json")})
    with pytest.raises(ValueError, match="scored another model"):
        push(config)


def _push_config(folder: Path, crops: Path, mlflow_uri: str, **gates) -> ObjectsPushConfig:
    return ObjectsPushConfig(
        model=str(folder / "model"),
        metrics=str(folder / "eval/metrics.json"),
        data=str(crops),
        name=NAME,
        tracking_uri=mlflow_uri,
        cache_dir=str(folder / "cache"),
        **gates,
    )
