"""The float16 and int8 TFLite exports scored with LiteRT next to the Keras model."""

import json
import warnings

import numpy as np
import pytest

from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.evaluate.core import evaluate
from cityseg.components.evaluate.litert import TfliteModel, int8_iou_drop, tflite_path
from cityseg.components.metrics import confusion_matrix, scores
from cityseg.components.train.export import export_model
from tests.components.evaluate.builders import decoder_model, graded_split, write_shards

SIZE = (16, 32)


@pytest.fixture(scope="module")
def split():
    return graded_split(count=5, height=SIZE[0], width=SIZE[1], seed=4)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, split):
    return write_shards(tmp_path_factory.mktemp("shards"), {"val": (split["images"], split["masks"])})


@pytest.fixture(scope="module")
def exported(tmp_path_factory, split):
    """A `cityseg train`-style model folder with model.keras, saved_model/ and both TFLite exports."""
    folder = tmp_path_factory.mktemp("exported")
    samples = split["images"].astype(np.float32) / 255
    export_model(decoder_model(*SIZE, channel=1), folder, samples)
    (folder / "train_info.json").write_text(json.dumps({"model": "decoder", "mlflow_run_id": None}))
    return folder


def _litert_scores(path, split) -> dict:
    model = TfliteModel(path)
    predicted = np.stack(
        [model.logits(image).argmax(-1) for image in split["images"].astype(np.float32) / 255]
    )
    return scores(confusion_matrix(split["masks"], predicted.astype(np.uint8)))


def test_both_exports_are_scored_next_to_the_keras_model(shards, exported, split, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(
            EvaluateConfig(data=str(shards), model=str(exported), out=str(tmp_path), log_to_mlflow=False)
        )
    assert not [w for w in caught if "Interpreter" in str(w.message)], "a TFLite interpreter warned"
    keras_scores = scores(confusion_matrix(split["masks"], split["good"]))
    assert result["mean_iou"] == keras_scores["mean_iou"]
    for variant in ("float16", "int8"):
        path = tflite_path(exported, variant)
        expected = _litert_scores(path, split)
        assert result[f"tflite_{variant}_mean_iou"] == expected["mean_iou"]
        assert result[f"tflite_{variant}_mean_dice"] == expected["mean_dice"]
        assert result[f"tflite_{variant}_mean_iou_delta"] == expected["mean_iou"] - result["mean_iou"]
        assert result[f"tflite_{variant}_mean_dice_delta"] == expected["mean_dice"] - result["mean_dice"]
        assert result[f"tflite_{variant}_size_bytes"] == path.stat().st_size
        assert result[f"tflite_{variant}_ms_per_image"] > 0
    # float16 keeps the decoder's integer-spaced logits apart: it predicts what Keras predicts.
    assert result["tflite_float16_mean_iou_delta"] == 0.0
    assert int8_iou_drop(result) == -result["tflite_int8_mean_iou_delta"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == result
    page = (tmp_path / "report.html").read_text()
    assert "Embedded exports (LiteRT" in page
    assert f"<td>int8</td><td>{result['tflite_int8_mean_iou']:.4f}</td>" in page


def test_a_model_without_exports_has_no_tflite_figures(shards, tmp_path):
    from tests.components.evaluate.builders import model_folder

    folder = model_folder(decoder_model(*SIZE, channel=0), tmp_path / "model")
    result = evaluate(
        EvaluateConfig(data=str(shards), model=str(folder), out=str(tmp_path / "eval"), log_to_mlflow=False)
    )
    assert not [key for key in result if key.startswith("tflite_")]
    assert int8_iou_drop(result) is None
    assert "Embedded exports" not in (tmp_path / "eval" / "report.html").read_text()


def test_a_broken_export_is_named_in_the_error(shards, exported, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    tflite_path(folder, "int8").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match=r"model_int8\.tflite: LiteRT cannot load"):
        evaluate(
            EvaluateConfig(
                data=str(shards), model=str(folder), out=str(tmp_path / "eval"), log_to_mlflow=False
            )
        )


def test_export_scores_are_logged_to_the_models_mlflow_run(shards, exported, mlflow_uri, tmp_path):
    import shutil

    import mlflow

    from tests.components.evaluate.builders import logged_model_folder

    folder, run_id = logged_model_folder(decoder_model(*SIZE, channel=1), tmp_path / "logged")
    shutil.copytree(exported / "tflite", folder / "tflite")
    result = evaluate(EvaluateConfig(data=str(shards), model=str(folder), out=str(tmp_path / "eval")))
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    for variant in ("float16", "int8"):
        for figure in ("mean_iou", "mean_iou_delta", "ms_per_image", "size_bytes"):
            key = f"tflite_{variant}_{figure}"
            assert logged[f"eval_{key}"] == pytest.approx(result[key])
