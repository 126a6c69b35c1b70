"""Load a cityseg model from wherever it lives: a model folder, a `.keras` file or an MLflow URI.

Accepted references:
- a model folder written by `cityseg train` (`model.keras`, `saved_model/`, `train_info.json`),
  local or `gs://`;
- a `.keras` file;
- a downloaded MLflow Keras model folder (`MLmodel`, `data/model.keras`);
- `models:/<name>@<alias>`, `models:/<name>/<version>` and `runs:/<run id>/<path>`.

MLflow models are downloaded once into a local cache. A registered version never changes, so the
cache is keyed by registry, name and version, and an alias is resolved to its version first: a
moved alias then loads the new version instead of a stale copy.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cityseg.components import storage
from cityseg.components.defaults import MODEL_CACHE_DIR
from cityseg.components.labels import NUM_CLASSES

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(MODEL_CACHE_DIR)
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
TRAIN_INFO_FILE = "train_info.json"


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A Keras model and where it came from.

    `registered_name`/`version` are set for `models:/` references, `run_id` whenever the MLflow run
    that logged the model is known (registry metadata, `runs:/` URI or `train_info.json`).
    """

    model: Any
    ref: str
    local_dir: Path
    keras_path: Path
    saved_model_dir: Path | None = None
    registered_name: str | None = None
    version: str | None = None
    run_id: str | None = None
    train_info: dict = dataclasses.field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int | None, int | None]:
        """The (height, width) the model was built for; None where it accepts any size."""
        return tuple(self.model.input_shape[1:3])


@dataclasses.dataclass(frozen=True)
class MlflowRef:
    """A parsed `models:/` or `runs:/` reference."""

    scheme: str
    name: str | None = None
    alias: str | None = None
    version: str | None = None
    run_id: str | None = None
    path: str | None = None


def is_mlflow_uri(ref: str) -> bool:
    """True for `models:/...` and `runs:/...` references."""
    return str(ref).startswith(("models:/", "runs:/"))


def parse_mlflow_uri(ref: str) -> MlflowRef:
    """Split a `models:/name@alias`, `models:/name/version` or `runs:/id/path` reference.

    Raises:
        ValueError: the reference has none of those forms.
    """
    if ref.startswith("models:/"):
        body = ref[len("models:/") :].strip("/")
        if "@" in body:
            name, _, alias = body.partition("@")
            if name and alias and "/" not in alias:
                return MlflowRef("models", name=name, alias=alias)
        else:
            name, _, version = body.rpartition("/")
            if name and version.isdigit():
                return MlflowRef("models", name=name, version=version)
        raise ValueError(f"{ref}: expected models:/<name>@<alias> or models:/<name>/<version>")
    if ref.startswith("runs:/"):
        run_id, _, path = ref[len("runs:/") :].strip("/").partition("/")
        if run_id and path:
            return MlflowRef("runs", run_id=run_id, path=path)
        raise ValueError(f"{ref}: expected runs:/<run id>/<artifact path>")
    raise ValueError(f"{ref}: not an MLflow models:/ or runs:/ URI")


def _not_found(err: Exception) -> bool:
    return getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def resolve_version(name: str, *, alias: str | None = None, version: str | None = None):
    """The registry's ModelVersion for `name@alias` or `name/version`.

    Raises:
        ValueError: the registered model, the version or the alias does not exist.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException as err:
        if _not_found(err):
            raise ValueError(
                f"registered model {name!r} does not exist in {mlflow.get_registry_uri()}"
            ) from err
        raise
    if alias is not None:
        if alias not in registered.aliases:
            known = ", ".join(f"@{a}" for a in sorted(registered.aliases)) or "none"
            raise ValueError(f"registered model {name!r} has no alias @{alias} (aliases: {known})")
        version = str(registered.aliases[alias])
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as err:
        if _not_found(err):
            raise ValueError(f"registered model {name!r} has no version {version}") from err
        raise


def _download(uri: str, target: Path) -> Path:
    """Download an MLflow model folder to `target` atomically, and only once it is verified to load.

    A failed or incomplete download never enters the cache, so the next attempt downloads again.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if target.exists():
        if any(target.rglob("*.keras")):
            return target
        # A copy without a model file, cached before downloads were verified: download it again.
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging)))
        # Raises unless it loads: never cache a bad copy. What the model must compute, `load` checks.
        _load_keras(_find_keras_file(local, uri), uri, check=lambda model, ref: None)
        os.replace(local, target)
    except MlflowException as err:
        raise ValueError(f"{uri}: cannot download the model: {err.message}") from err
    except OSError:
        # Another process filled the cache first; its copy is as good as ours.
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _registry_cache(cache_dir: Path) -> Path:
    # Two registries can both hold a "cityseg" version 3; the cache must not mix them up.
    import mlflow

    return cache_dir / "models" / hashlib.sha256(mlflow.get_registry_uri().encode()).hexdigest()[:12]


def _fetch_mlflow(ref: str, cache_dir: Path) -> tuple[Path, dict]:
    parsed = parse_mlflow_uri(ref)
    if parsed.scheme == "models":
        mv = resolve_version(parsed.name, alias=parsed.alias, version=parsed.version)
        local = _download(
            f"models:/{mv.name}/{mv.version}", _registry_cache(cache_dir) / mv.name / str(mv.version)
        )
        return local, {"registered_name": mv.name, "version": str(mv.version), "run_id": mv.run_id}
    local = _download(ref, cache_dir / "runs" / parsed.run_id / parsed.path)
    return local, {"run_id": parsed.run_id}


def _fetch_gcs(ref: str, cache_dir: Path) -> Path:
    target = cache_dir / "gcs" / hashlib.sha256(ref.encode()).hexdigest()[:16]
    if not target.exists():
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".gcs."))
        if not storage.copy_tree(ref, staging):
            shutil.rmtree(staging)
            raise ValueError(f"{ref}: no model files below this gs:// folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
    return target


def _find_keras_file(root: Path, ref: str) -> Path:
    if root.is_file():
        if root.suffix != ".keras":
            raise ValueError(f"{ref}: a model file must be a Keras 3 `.keras` file")
        return root
    for candidate in (root / KERAS_FILE, root / "data" / KERAS_FILE):
        if candidate.is_file():
            return candidate
    found = sorted(root.rglob("*.keras"))
    if len(found) == 1:
        return found[0]
    what = "no" if not found else f"{len(found)}"
    raise ValueError(
        f"{ref}: {what} .keras files in {root}; expected {KERAS_FILE} (a `cityseg train` model folder)"
    )


def _read_train_info(folder: Path) -> dict:
    path = folder / TRAIN_INFO_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err


def check_output(model, ref: str) -> None:
    """Require images in, one logit per category out.

    Raises:
        ValueError: the input is not (H, W, 3) or the output does not have NUM_CLASSES channels.
    """
    input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    if len(input_shape) != 4 or input_shape[-1] != 3:
        raise ValueError(f"{ref}: model input is {input_shape}; cityseg models take (batch, H, W, 3) images")
    if len(output_shape) != 4 or output_shape[-1] != NUM_CLASSES:
        raise ValueError(
            f"{ref}: model output is {output_shape}, but cityseg needs (batch, H, W, {NUM_CLASSES}): "
            f"one logit per category"
        )


def _load_keras(keras_path: Path, ref: str, check: Callable[[object, str], None] = check_output):
    import keras

    # Custom layers register themselves on import; the model file names them by "cityseg>..." keys.
    import cityseg.components.train.models  # noqa: F401

    try:
        model = keras.models.load_model(keras_path, compile=False)
    except (ValueError, TypeError, OSError) as err:
        raise ValueError(f"{ref}: cannot load Keras model {keras_path}: {err}") from err
    check(model, ref)
    return model


def load(
    ref: str | os.PathLike, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, *, check=check_output
) -> LoadedModel:
    """Load the model that `ref` names (see the module docstring) and check it with `check(model, ref)`.

    The check is a segmenter's shape by default; the object classifier passes its own.

    Raises:
        ValueError: nothing loadable at `ref`, an unknown registered model/version/alias, or a
            model whose output does not have 8 classes.
    """
    ref = str(ref)
    cache_dir = Path(cache_dir)
    info: dict = {}
    if is_mlflow_uri(ref):
        local, info = _fetch_mlflow(ref, cache_dir)
    elif storage.is_gcs(ref):
        cache_dir.mkdir(parents=True, exist_ok=True)
        local = _fetch_gcs(ref, cache_dir)
    else:
        local = Path(ref)
        if not local.exists():
            raise ValueError(f"{ref}: no such model file or folder")
    keras_path = _find_keras_file(local, ref)
    folder = keras_path.parent if local.is_file() else local
    train_info = _read_train_info(folder)
    model = _load_keras(keras_path, ref, check)
    saved_model = folder / SAVED_MODEL_DIR
    return LoadedModel(
        model=model,
        ref=ref,
        local_dir=folder,
        keras_path=keras_path,
        saved_model_dir=saved_model if (saved_model / "saved_model.pb").is_file() else None,
        registered_name=info.get("registered_name"),
        version=info.get("version"),
        run_id=info.get("run_id") or train_info.get("mlflow_run_id"),
        train_info=train_info,
    )
