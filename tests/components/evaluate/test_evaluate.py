import json
import re

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.evaluate.core import evaluate
from cityseg.components.evaluate.frame_matrices import from_npz
from cityseg.components.labels import CATEGORY_NAMES, category_colors
from cityseg.components.metrics import confusion_matrix, scores
from tests.components.evaluate.builders import (
    decoder_model,
    graded_split,
    logged_model_folder,
    model_folder,
    write_shards,
)

SIZE = (16, 32)


@pytest.fixture(scope="module")
def split():
    return graded_split(count=7, height=SIZE[0], width=SIZE[1])


@pytest.fixture(scope="module")
def shards(tmp_path_factory, split):
    return write_shards(tmp_path_factory.mktemp("shards"), {"val": (split["images"], split["masks"])})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        name: model_folder(decoder_model(*SIZE, channel=channel), root / name)
        for name, channel in (("perfect", 0), ("good", 1))
    }


def _evaluate(shards, model, out, **kwargs):
    return evaluate(
        EvaluateConfig(data=str(shards), model=str(model), out=str(out), log_to_mlflow=False, **kwargs)
    )


def test_perfect_model_scores_one_and_writes_every_output(shards, models, split, tmp_path):
    result = _evaluate(shards, models["perfect"], tmp_path, batch_size=3)
    assert result["mean_dice"] == result["mean_iou"] == result["pixel_accuracy"] == 1.0
    assert result["mean_iou_8"] == result["mean_dice_8"] == 1.0
    assert all(result[f"iou_{name}"] == 1.0 for name in CATEGORY_NAMES)
    counts = np.bincount(split["masks"].ravel(), minlength=8)
    assert np.array_equal(np.array(result["confusion_matrix"]), np.diag(counts))
    assert (result["split"], result["examples"], result["model_ref"]) == ("val", 7, str(models["perfect"]))
    assert result["latency_ms_per_image"] > 0
    assert result["images_per_s"] == pytest.approx(1000 / result["latency_ms_per_image"])
    assert result["data_manifest_hash"] == json.loads((shards / "manifest.json").read_text())["content_hash"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == result
    for name in ("confusion_matrix.png", "per_category.png"):
        picture = cv2.imdecode(np.frombuffer((tmp_path / name).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[0] > 300 and picture.shape[1] > 300


def test_report_is_self_contained_with_six_triptychs_and_a_legend(shards, models, tmp_path):
    _evaluate(shards, models["good"], tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page.count('<div class="triptych">') == 6
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 6 * 3 + 2
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "href=" not in page
    for name, (r, g, b) in zip(CATEGORY_NAMES, category_colors().tolist(), strict=True):
        assert f'background:rgb({r},{g},{b})"></i>{name}</span>' in page


def test_scores_come_from_one_confusion_matrix_over_the_split(shards, models, split, tmp_path):
    # Batches of 3 over 7 images: averaging per-batch scores would give different numbers.
    result = _evaluate(shards, models["good"], tmp_path, batch_size=3)
    expected_cm = confusion_matrix(split["masks"], split["good"])
    assert result["confusion_matrix"] == expected_cm.tolist()
    for key, value in scores(expected_cm).items():
        assert result[key] == pytest.approx(value, abs=1e-12), key
    assert 0.6 < result["mean_dice"] < 0.95
    # One matrix per frame in split order, across the batch boundaries; they sum to the split's.
    stacks = from_npz((tmp_path / "frame_confusions.npz").read_bytes(), "frame_confusions.npz")
    assert list(stacks) == ["clean"] and stacks["clean"].shape == (7, 8, 8)
    for index in range(7):
        assert np.array_equal(
            stacks["clean"][index], confusion_matrix(split["masks"][index], split["good"][index])
        )
    assert stacks["clean"].sum(axis=0).tolist() == result["confusion_matrix"]


def test_inputs_of_another_size_are_resized_and_scored_at_label_resolution(shards, split, tmp_path):
    # The model takes 8x16; the 2x2 blocks of the 16x32 images survive area downscaling exactly.
    small = model_folder(decoder_model(8, 16, channel=0), tmp_path / "small")
    result = _evaluate(shards, small, tmp_path / "eval")
    assert result["mean_dice"] == 1.0
    assert np.array(result["confusion_matrix"]).sum() == split["masks"].size


def test_metrics_are_logged_to_the_models_mlflow_run(shards, mlflow_uri, tmp_path):
    import mlflow

    from cityseg.components import tracking

    folder, run_id = logged_model_folder(decoder_model(*SIZE, channel=1), tmp_path / "logged")
    result = evaluate(EvaluateConfig(data=str(shards), model=str(folder), out=str(tmp_path / "eval")))
    assert result["mlflow_run_id"] == run_id
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics["eval_mean_dice"] == pytest.approx(result["mean_dice"])
    assert run.data.metrics["eval_iou_sky"] == pytest.approx(result["iou_sky"])
    assert run.data.metrics["eval_images_per_s"] == pytest.approx(result["images_per_s"])
    assert run.data.tags["eval_split"] == "val"
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "evaluation")}
    assert logged == {
        "evaluation/confusion_matrix.png",
        "evaluation/frame_confusions.npz",
        "evaluation/per_category.png",
        "evaluation/report.html",
    }
    npz = tracking.read_artifact(run_id, "evaluation/frame_confusions.npz")
    assert npz == (tmp_path / "eval" / "frame_confusions.npz").read_bytes()
    assert from_npz(npz, run_id)["clean"].sum(axis=0).tolist() == result["confusion_matrix"]
    assert tracking.read_artifact(run_id, "evaluation/absent.npz") is None


def test_unknown_run_and_split_are_reported_clearly(shards, models, mlflow_uri, tmp_path):
    stray = model_folder(decoder_model(*SIZE), tmp_path / "stray", run_id="0" * 32)
    with pytest.raises(ValueError, match=f"MLflow run {'0' * 32} of the model is not in {mlflow_uri}"):
        evaluate(EvaluateConfig(data=str(shards), model=str(stray), out=str(tmp_path / "a")))
    assert not (tmp_path / "a").exists()  # refused before any work
    with pytest.raises(ValueError, match=r"no examples in split 'test' \(splits with examples: val\)"):
        _evaluate(shards, models["perfect"], tmp_path / "b", split="test")
    assert not (tmp_path / "b").exists()


def test_cli_prints_the_headline_and_refuses_bad_input(shards, models, tmp_path):
    runner = CliRunner()
    args = ["evaluate", "--data", str(shards), "--model", str(models["perfect"]), "--no-mlflow"]
    ok = runner.invoke(main, [*args, "--out", str(tmp_path / "ok"), "--samples", "2"])
    assert ok.exit_code == 0, ok.output
    assert "7 val images: mean Dice 1.0000, mean IoU 1.0000" in ok.output
    assert (tmp_path / "ok" / "report.html").read_text().count('<div class="triptych">') == 2
    bad = runner.invoke(main, [*args, "--out", str(tmp_path / "bad"), "--split", "train"])
    assert bad.exit_code == 1
    assert "Error: " in bad.output and "no examples in split 'train'" in bad.output


def test_a_split_whose_labels_are_all_void_is_refused_not_scored(split, models, tmp_path):
    # Real Cityscapes' public test labels: every pixel `unlabeled`, which the category masks hold as void.
    placeholders = np.zeros_like(split["masks"])
    labelled = placeholders.copy()
    labelled[0, 0, 0] = 1
    data = write_shards(
        tmp_path / "shards",
        {"test": (split["images"], placeholders), "labelled": (split["images"], labelled)},
    )
    with pytest.raises(
        ValueError, match=r"split 'test' has no labelled pixel \(all 3584 are void or ignored"
    ):
        _evaluate(data, models["perfect"], tmp_path / "test", split="test")
    assert not (tmp_path / "test").exists()
    args = [
        "evaluate",
        "--data",
        str(data),
        "--model",
        str(models["perfect"]),
        "--no-mlflow",
        "--split",
        "test",
    ]
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "cli")])
    assert refused.exit_code == 1 and "Error: " in refused.output and "it cannot be scored" in refused.output
    # One labelled pixel makes a split that can be scored: its one pixel is what is scored.
    scored = _evaluate(data, models["perfect"], tmp_path / "one", split="labelled")
    assert (scored["examples"], np.array(scored["confusion_matrix"])[1:].sum()) == (7, 1)


def test_metrics_name_the_model_by_its_weights(shards, models, tmp_path):
    from cityseg.components.evaluate.core import weight_arrays_sha256
    from cityseg.components.modelstore import load

    first = _evaluate(shards, models["good"], tmp_path / "eval")
    again = _evaluate(shards, models["good"], tmp_path / "eval")  # a rerun replaces its own output
    other = _evaluate(shards, models["perfect"], tmp_path / "other")
    assert first["model_sha256"] == again["model_sha256"] == weight_arrays_sha256(load(models["good"]).model)
    assert other["model_sha256"] != first["model_sha256"]
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == [
        ".cityseg-evaluate",
        "confusion_matrix.png",
        "frame_confusions.npz",
        "metrics.json",
        "per_category.png",
        "report.html",
    ]


@pytest.mark.parametrize("out", ["model", "shards", "user files"])
def test_an_output_over_its_inputs_or_user_files_is_refused(shards, split, tmp_path, out):
    model = model_folder(decoder_model(*SIZE, channel=0), tmp_path / "model")
    (tmp_path / "user files").mkdir()
    (tmp_path / "user files" / "report.html").write_text("mine")
    target = {"model": model, "shards": shards, "user files": tmp_path / "user files"}[out]

    def files():
        return {p: p.read_bytes() for root in (tmp_path, shards) for p in root.rglob("*") if p.is_file()}

    before = files()
    args = ["evaluate", "--data", str(shards), "--model", str(model), "--no-mlflow", "--out", str(target)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and f"Error: {target}: " in result.output
    assert files() == before
