"""Seconds per LIME explanation of a segmenter's region at 256x512 with the default samples and superpixels.

The model is the recipe's segmenter at its trained size (speed does not depend on the weights); the
baseline is one prediction of the same image, so the ratio says how many predictions' worth an
explanation costs (its samples, scored in batches, plus SLIC and the regression).
"""

from pathlib import Path

import numpy as np

from cityseg.components.defaults import RECIPE
from cityseg.components.serve.explain import DEFAULT_SAMPLES, DEFAULT_SUPERPIXELS, explain, segmenter_score
from cityseg.components.synth import core
from cityseg.components.train.models import build_model
from tests.benchmarks.common import Result, machine, timed

HEIGHT, WIDTH = 256, 512


def run(work_dir: Path) -> list[Result]:
    """Seconds for one explanation, against one prediction of the same image."""
    import cv2

    files, _ = core.render_frame(0, "frankfurt", 0, HEIGHT, WIDTH)
    image = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(files["image"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    model = build_model(RECIPE.model, RECIPE.height, RECIPE.width)
    region = np.zeros((HEIGHT, WIDTH), bool)
    region[150:200, 200:300] = True
    score = segmenter_score(model, 7, region)
    predict_s, _ = timed(score, image[None], repeat=5)
    explain_s, _ = timed(explain, image, score, repeat=2)
    return [
        Result(
            name=f"LIME at {HEIGHT}x{WIDTH}, {DEFAULT_SAMPLES} samples, {DEFAULT_SUPERPIXELS} superpixels",
            value=round(explain_s, 3),
            unit="s",
            baseline_name=f"one prediction of it ({RECIPE.model} at {RECIPE.height}x{RECIPE.width})",
            baseline_value=round(predict_s, 4),
            goal="seconds per explanation; the ratio is its cost in predictions",
            command="python -m tests.benchmarks --only explain",
            machine=machine(),
        )
    ]
