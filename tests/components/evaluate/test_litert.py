"""The float16 and int8 TFLite exports scored with LiteRT next to the Keras model."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

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


# How far an int8 export may stray from the float32 Keras model it came from, on these frames: the
# share of pixels whose category differs, and the mean IoU it may lose against the true masks.
MIN_PIXEL_AGREEMENT = 0.99
MAX_INT8_IOU_DROP = 0.01


def _raw_classes(path, images: np.ndarray) -> np.ndarray:
    """Category ids from LiteRT's own interpreter, fed as its input tensor says (not through TfliteModel)."""
    runner = Interpreter(model_path=str(path))
    runner.allocate_tensors()
    (inp,), (out,) = runner.get_input_details(), runner.get_output_details()
    assert inp["dtype"] == np.float32
    predicted = []
    for image in images:
        runner.set_tensor(inp["index"], image[np.newaxis])
        runner.invoke()
        predicted.append(runner.get_tensor(out["index"])[0].argmax(-1))
    return np.stack(predicted).astype(np.uint8)


def _keras_classes(folder, images: np.ndarray) -> np.ndarray:
    model = keras.models.load_model(folder / "model.keras", compile=False)
    return model.predict(images, verbose=0).argmax(-1).astype(np.uint8)


def _int8_export(folder, samples: np.ndarray, input_type) -> bytes:
    """An int8 export with integer input, as embedded targets take it; `cityseg train` keeps float edges."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved_model"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[np.newaxis]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = input_type
    return converter.convert()


def test_both_exports_are_scored_next_to_the_keras_model(shards, exported, split, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(
            EvaluateConfig(data=str(shards), model=str(exported), out=str(tmp_path), log_to_mlflow=False)
        )
    assert not [w for w in caught if "Interpreter" in str(w.message)], "a TFLite interpreter warned"
    images = split["images"].astype(np.float32) / 255
    keras_classes = _keras_classes(exported, images)
    keras_scores = scores(confusion_matrix(split["masks"], keras_classes))
    assert result["mean_iou"] == keras_scores["mean_iou"]
    for variant in ("float16", "int8"):
        path = tflite_path(exported, variant)
        classes = _raw_classes(path, images)
        expected = scores(confusion_matrix(split["masks"], classes))
        # The export against the float32 Keras model, not against itself.
        assert np.mean(classes == keras_classes) >= MIN_PIXEL_AGREEMENT, variant
        assert keras_scores["mean_iou"] - expected["mean_iou"] <= MAX_INT8_IOU_DROP, variant
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


@pytest.mark.parametrize("input_type", [tf.uint8, tf.int8])
def test_an_export_with_integer_input_is_fed_quantized_images(exported, split, tmp_path, input_type):
    images = split["images"].astype(np.float32) / 255
    path = tmp_path / "model_int8_io.tflite"
    path.write_bytes(_int8_export(exported, images, input_type))
    model = TfliteModel(path)
    assert Interpreter(model_path=str(path)).get_input_details()[0]["dtype"] == input_type.as_numpy_dtype
    classes = np.stack([model.logits(image).argmax(-1) for image in images]).astype(np.uint8)
    keras_classes = _keras_classes(exported, images)
    assert np.mean(classes == keras_classes) >= MIN_PIXEL_AGREEMENT
    drop = (
        scores(confusion_matrix(split["masks"], keras_classes))["mean_iou"]
        - scores(confusion_matrix(split["masks"], classes))["mean_iou"]
    )
    assert drop <= MAX_INT8_IOU_DROP


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
