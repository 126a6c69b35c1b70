"""Infra validation before `@champion` moves, the int8 export gate, and the servable serving copy."""

import json
from pathlib import Path

import numpy as np
import pytest

from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.evaluate.core import evaluate
from cityseg.components.modelstore import load
from cityseg.components.push import registry
from cityseg.components.push.config import PushConfig
from cityseg.components.push.core import push
from cityseg.components.push.evidence import int8_refusal
from tests.components.evaluate.builders import decoder_model, logged_model_folder, model_folder


def _push(candidate: dict, shards, name: str, **kwargs):
    config = PushConfig(
        model=candidate["model"],
        metrics=kwargs.pop("metrics", candidate["metrics"]),
        data=str(shards),
        name=name,
        cache_dir=candidate["cache_dir"],
        min_dice=0.0,
        **kwargs,
    )
    return push(config)


def test_a_good_model_passes_the_serving_path_and_its_folder_is_servable(
    candidates, push_shards, model_name, tmp_path
):
    result = _push(candidates["good"], push_shards, model_name, serving_dir=str(tmp_path / "serving"))
    assert result.blessed and result.aliases == ("champion",)
    tags = registry.version_tags(model_name, "1")
    assert tags["infra_validation"] == "passed"
    assert tags["infra_requests"] == "4/4"  # the split holds 4 images, fewer than infra_images
    assert float(tags["infra_agreement"]) == 1.0
    assert 0 < float(tags["infra_p50_ms"]) <= float(tags["infra_p95_ms"])
    assert tags["infra_validation_reason"].startswith("served 4 images: loaded in ")
    # The pushed folder loads with cityseg's own loader, so `cityseg serve` and KServe can serve it.
    served = load(result.serving_path, cache_dir=candidates["good"]["cache_dir"])
    image = np.zeros((1, 16, 32, 3), np.float32)
    image[..., 1] = 3 / 7
    assert (served.model.predict(image, verbose=0).argmax(-1) == 3).all()
    assert served.run_id == load(candidates["good"]["model"]).run_id
    assert (tmp_path / "serving" / "1" / "saved_model.pb").is_file()


def test_a_model_that_does_not_load_in_time_is_not_blessed(candidates, push_shards, model_name, tmp_path):
    result = _push(
        candidates["good"],
        push_shards,
        model_name,
        infra_load_timeout_s=1e-3,
        serving_dir=str(tmp_path / "s"),
    )
    assert not result.blessed
    assert result.reason.startswith(f"infra validation: models:/{model_name}/1 did not load within 0.001s")
    assert result.model_aliases == {} and not (tmp_path / "s").exists()
    tags = registry.version_tags(model_name, "1")
    assert tags["blessed"] == "false" and tags["infra_validation"] == "failed"
    assert tags["blessing_reason"] == result.reason


def test_a_registered_artifact_that_is_not_the_evaluated_model_is_refused(
    mlflow_server, push_shards, candidates, model_name, tmp_path
):
    """The run logged one model, the folder holds another: the scores fit the folder, not what is served."""
    _, run_id = logged_model_folder(decoder_model(16, 32, channel=2), tmp_path / "logged")
    folder = model_folder(decoder_model(16, 32, channel=1), tmp_path / "folder", run_id=run_id)
    evaluate(
        EvaluateConfig(
            data=str(push_shards), model=str(folder), out=str(tmp_path / "eval"), log_to_mlflow=False
        )
    )
    candidate = {
        "model": str(folder),
        "metrics": str(tmp_path / "eval" / "metrics.json"),
        "cache_dir": candidates["good"]["cache_dir"],
    }
    result = _push(candidate, push_shards, model_name)
    assert not result.blessed and result.model_aliases == {}
    assert result.reason.startswith("infra validation: served masks equal the evaluated predictions on ")
    assert result.reason.endswith("of pixels < 99.9000%")
    assert registry.version_tags(model_name, "1")["infra_validation"] == "failed"


def test_a_slow_model_is_refused_on_p95_latency(candidates, push_shards, model_name):
    result = _push(candidates["good"], push_shards, model_name, infra_max_p95_ms=1e-3)
    assert not result.blessed
    assert result.reason.startswith("infra validation: p95 latency ") and result.reason.endswith(
        " ms > 0.001 ms"
    )


def _with_int8_delta(candidate: dict, delta, path) -> str:
    scores = json.loads(Path(candidate["metrics"]).read_text())
    if delta is not None:
        scores["tflite_int8_mean_iou_delta"] = delta
    path.write_text(json.dumps(scores))
    return str(path)


def test_the_int8_gate_refuses_a_model_whose_int8_export_loses_too_much(
    candidates, push_shards, model_name, tmp_path
):
    lossy = _with_int8_delta(candidates["good"], -0.25, tmp_path / "metrics.json")
    refused = _push(candidates["good"], push_shards, model_name, metrics=lossy, max_int8_iou_drop=0.1)
    assert not refused.blessed and refused.model_aliases == {}
    assert refused.reason == "int8 gate: the int8 export loses 0.2500 mean_iou > max_int8_iou_drop 0.1000"
    assert _push(candidates["good"], push_shards, model_name, metrics=lossy, max_int8_iou_drop=0.25).blessed


def test_int8_refusal_is_off_by_default_and_needs_the_int8_score():
    assert int8_refusal({"tflite_int8_mean_iou_delta": -0.9}, None) is None
    assert int8_refusal({"tflite_int8_mean_iou_delta": 0.01}, 0.0) is None
    assert int8_refusal({}, 0.05).startswith("int8 gate: metrics.json has no int8 export score")
    with pytest.raises(ValueError, match=r"max_int8_iou_drop must lie in \[0, 1\] or be None, got 2"):
        PushConfig(model="m", metrics="x", data="d", max_int8_iou_drop=2)
    with pytest.raises(ValueError, match="infra_images must be at least 1, got 0"):
        PushConfig(model="m", metrics="x", data="d", infra_images=0)


def test_cli_passes_the_gates_options_and_refuses_bad_ones(candidates, push_shards, model_name):
    from click.testing import CliRunner

    from cityseg.cli import main

    good = candidates["good"]
    common = ["push", "--model", good["model"], "--metrics", good["metrics"], "--data", str(push_shards)]
    common += ["--name", model_name, "--min-dice", "0"]
    result = CliRunner().invoke(main, [*common, "--no-infra-validation", "--max-int8-iou-drop", "0.1"])
    assert result.exit_code == 0, result.output
    assert (
        "NOT BLESSED (aliases unchanged): int8 gate: metrics.json has no int8 export score" in result.output
    )
    assert "infra_validation" not in registry.version_tags(model_name, "1")
    bad = CliRunner().invoke(main, [*common, "--infra-load-timeout-s", "0"])
    assert bad.exit_code == 2 and "Invalid value for '--infra-load-timeout-s'" in bad.output


def test_a_registered_model_that_fails_to_load_when_served_is_refused(
    mlflow_server, push_shards, candidates, model_name, tmp_path, tmp_path_factory
):
    """The evaluated folder is sound, but the logged artifact the cluster would download is broken."""
    import mlflow

    model = decoder_model(16, 32, channel=1)
    mlflow.set_experiment("cityseg-tests")
    with mlflow.start_run() as run:
        info = mlflow.keras.log_model(model, name="model", pip_requirements=["tensorflow-cpu"])
    location = mlflow.MlflowClient().get_logged_model(info.model_id).artifact_location
    relative = f"{location.removeprefix('mlflow-artifacts:/')}/data/model.keras"
    roots = tmp_path_factory.getbasetemp().glob("*/artifacts")
    (broken,) = {(root / relative).resolve() for root in roots if (root / relative).is_file()}
    broken.write_bytes(b"not a keras file")
    folder = model_folder(model, tmp_path / "folder", run_id=run.info.run_id)
    out = tmp_path / "eval"
    evaluate(EvaluateConfig(data=str(push_shards), model=str(folder), out=str(out), log_to_mlflow=False))
    candidate = {"model": str(folder), "metrics": str(out / "metrics.json"), "cache_dir": str(tmp_path / "c")}
    result = _push(candidate, push_shards, model_name, infra_load_timeout_s=15)
    assert not result.blessed and result.model_aliases == {}
    assert result.reason.startswith(f"infra validation: models:/{model_name}/1 did not load within 15s")
    assert "cannot load Keras model" in result.reason
