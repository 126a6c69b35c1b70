"""The serving copy of a blessed model in `<serving_dir>/<version>/`, `PUSHED` last.

The folder holds the SavedModel (for TF Serving-style servers) and, beside it, `model.keras` and
`train_info.json`, so `cityseg serve` (`cityseg.components.modelstore.load`) serves the folder
itself: a KServe `storageUri` may point straight at it.

The version folder is written like every step output (`cityseg.components.output_folder`): an
earlier serving copy of the same version is replaced, anything else there is refused, and the
`PUSHED` marker, which says the copy is complete, goes up after every other file.
"""

import datetime
import json
import logging
import shutil
from pathlib import Path

from cityseg.components import output_folder, storage
from cityseg.components.modelstore import KERAS_FILE, TRAIN_INFO_FILE, LoadedModel

log = logging.getLogger(__name__)

PUSHED_MARKER = "PUSHED"


def copy_to_serving(
    serving_dir: str, loaded: LoadedModel, *, name: str, version: str, model_ref: str, mean_dice: float | None
) -> str:
    """Write the SavedModel, model.keras and train_info.json of `loaded` to `<serving_dir>/<version>/`.

    Returns:
        That folder.

    Raises:
        OutputFolderError: the version folder holds files an earlier push did not write, or is the
            model itself.
    """
    target = storage.join(serving_dir, version)
    sources = [loaded.local_dir]
    with output_folder.staged_folder(target, "push", sources, last=PUSHED_MARKER) as staging:
        if loaded.saved_model_dir is None:
            # Models from MLflow carry only model.keras; export the SavedModel the way train does.
            loaded.model.export(str(staging), verbose=False)
        else:
            storage.copy_tree(loaded.saved_model_dir, staging)
        shutil.copyfile(loaded.keras_path, Path(staging, KERAS_FILE))
        if loaded.train_info:
            Path(staging, TRAIN_INFO_FILE).write_text(json.dumps(loaded.train_info, indent=2) + "\n")
        # Every file of the version folder but PUSHED itself: the models, train_info and the output marker.
        files = len(list(storage.list_files(staging))) + 1
        marker = {
            "name": name,
            "version": version,
            "model_ref": model_ref,
            "mean_dice": mean_dice,
            "files": files,
            "pushed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        Path(staging, PUSHED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    log.info("copied SavedModel and model.keras v%s to %s", version, target)
    return target
