import numpy as np
import pytest

from cityseg.components import modelstore, storage
from tests.components.evaluate.builders import decoder_model, logged_model_folder, model_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return model_folder(decoder_model(16, 32), tmp_path_factory.mktemp("model") / "model", run_id="abc123")


def _predicts_channel_zero(loaded) -> bool:
    image = np.zeros((1, 16, 32, 3), np.float32)
    image[..., 0] = 3 / 7
    return bool((loaded.model.predict(image, verbose=0).argmax(-1) == 3).all())


def test_model_folder_loads_with_its_train_info(folder):
    loaded = modelstore.load(folder)
    assert loaded.input_size == (16, 32)
    assert loaded.run_id == "abc123" and loaded.version is None
    assert loaded.keras_path == folder / "model.keras"
    assert loaded.saved_model_dir is None
    assert _predicts_channel_zero(loaded)


def test_keras_file_loads(folder):
    loaded = modelstore.load(folder / "model.keras")
    assert loaded.local_dir == folder and loaded.run_id == "abc123"


def test_model_without_eight_classes_is_refused(tmp_path):
    path = tmp_path / "five.keras"
    decoder_model(16, 32, classes=5).save(path)
    with pytest.raises(
        ValueError, match=r"five.keras: model output is \(None, 16, 32, 5\).*needs \(batch, H, W, 8\)"
    ):
        modelstore.load(path)


def test_missing_and_empty_references_are_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere: no such model file or folder"):
        modelstore.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no \.keras files"):
        modelstore.load(tmp_path / "empty")
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"must be a Keras 3 `\.keras` file"):
        modelstore.load(tmp_path / "weights.h5")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/cityseg@champion", modelstore.MlflowRef("models", name="cityseg", alias="champion")),
        ("models:/cityseg/12", modelstore.MlflowRef("models", name="cityseg", version="12")),
        ("runs:/0123abc/model", modelstore.MlflowRef("runs", run_id="0123abc", path="model")),
    ],
)
def test_mlflow_uris_parse(uri, expected):
    assert modelstore.parse_mlflow_uri(uri) == expected


@pytest.mark.parametrize("uri", ["models:/cityseg", "models:/cityseg/latest", "runs:/0123abc", "models:/@x"])
def test_malformed_mlflow_uris_are_refused(uri):
    with pytest.raises(ValueError, match="expected"):
        modelstore.parse_mlflow_uri(uri)


def test_registry_references_resolve_and_cache_by_version(mlflow_uri, tmp_path):
    import mlflow

    _, run_id = logged_model_folder(decoder_model(16, 32), tmp_path / "m")
    version = mlflow.register_model(f"runs:/{run_id}/model", "modelstore-test").version
    mlflow.MlflowClient().set_registered_model_alias("modelstore-test", "champion", version)
    cache = tmp_path / "cache"

    by_alias = modelstore.load("models:/modelstore-test@champion", cache_dir=cache)
    assert (by_alias.registered_name, by_alias.version, by_alias.run_id) == ("modelstore-test", "1", run_id)
    assert by_alias.local_dir.relative_to(cache / "models").parts[1:] == ("modelstore-test", "1")
    assert _predicts_channel_zero(by_alias)
    by_version = modelstore.load("models:/modelstore-test/1", cache_dir=cache)
    assert by_version.keras_path == by_alias.keras_path
    by_run = modelstore.load(f"runs:/{run_id}/model", cache_dir=cache)
    assert by_run.run_id == run_id and by_run.version is None

    with pytest.raises(ValueError, match="registered model 'nope' does not exist"):
        modelstore.load("models:/nope@champion", cache_dir=cache)
    with pytest.raises(ValueError, match="registered model 'modelstore-test' has no version 7"):
        modelstore.load("models:/modelstore-test/7", cache_dir=cache)
    with pytest.raises(ValueError, match=r"has no alias @previous \(aliases: @champion\)"):
        modelstore.load("models:/modelstore-test@previous", cache_dir=cache)


def test_gcs_model_folder_is_fetched_once(gcs_emulator, folder, tmp_path):
    uri = storage.join(gcs_emulator(), "models", "m1")
    storage.copy_tree(folder, uri)
    loaded = modelstore.load(uri, cache_dir=tmp_path)
    assert loaded.run_id == "abc123" and _predicts_channel_zero(loaded)
    assert modelstore.load(uri, cache_dir=tmp_path).local_dir == loaded.local_dir
