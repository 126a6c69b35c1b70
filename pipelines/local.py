"""`cityseg run`: the whole training pipeline in kfp.local, then a summary of what it produced.

Tasks run as subprocesses of this Python (SubprocessRunner without a venv), so they use the
installed project exactly as the container images do. Local caching is on: a second run with the
same data and sizes reuses the synth, remap and shard outputs, while train, evaluate and push run again.
"""

import contextlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cityseg.components import tracking
from cityseg.components.labels import CATEGORY_NAMES, VOID
from cityseg.pipelines.training import create_pipeline
from cityseg.pipelines.validation import validate_params

CACHE_HIT = re.compile(r"Task (\S+) cache hit")


class CacheHits(logging.Handler):
    """Collects the tasks that kfp.local served from its cache (it only logs them, at INFO)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tasks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if match := CACHE_HIT.search(record.getMessage()):
            self.tasks.append(match.group(1).strip("'"))


@contextlib.contextmanager
def cache_hits() -> Iterator[CacheHits]:
    """Record cache hits while the block runs; the root logger goes to INFO meanwhile so they get logged."""
    root = logging.getLogger()
    hits, level = CacheHits(), root.level
    root.addHandler(hits)
    root.setLevel(min(level or logging.WARNING, logging.INFO))
    try:
        yield hits
    finally:
        root.removeHandler(hits)
        root.setLevel(level)


def pipeline_inputs() -> dict:
    """The training pipeline's parameters: name -> KFP InputSpec (type, default, description)."""
    return dict(create_pipeline(platform="local").component_spec.inputs)


def default_params() -> dict:
    """Every pipeline parameter with its default value."""
    return {name: spec.default for name, spec in pipeline_inputs().items()}


@dataclass(frozen=True)
class RunSummary:
    """What a local run produced, for the closing table."""

    params: dict
    splits: dict[str, int]
    train_info: dict
    scores: dict
    blessed: bool
    version: str
    aliases: str
    reason: str
    pipeline_root: str
    shards_dir: str
    model_dir: str
    evaluation_dir: str
    report: str
    tracking_uri: str
    wall_time_s: float
    cached: list[str]


@dataclass(frozen=True)
class LocalRun:
    """What a pipeline run in kfp.local produced."""

    params: dict
    outputs: dict
    pipeline_root: str
    tracking_uri: str
    wall_time_s: float
    cached: list[str]


def run_in_kfp_local(
    create: Callable[[], object], params: dict, work_dir: Path, validate: Callable[[dict], None]
) -> LocalRun:
    """Run the pipeline `create()` builds in kfp.local under `work_dir`, with `params` over its defaults.

    Raises:
        cityseg.pipelines.validation.ParameterError: `validate` rejects a parameter, before any step runs.
        RuntimeError: a step failed (its log is above, in the run's output).
    """
    from kfp import local

    pipeline = create()
    params = {**{name: spec.default for name, spec in pipeline.component_spec.inputs.items()}, **params}
    validate(params)
    work_dir = Path(work_dir).resolve()
    # Pin the store explicitly, so every step (and the summary) uses the same one whatever the cwd.
    tracking_uri = tracking.resolve_tracking_uri(params["mlflow_tracking_uri"] or None, work_dir)
    params = {**params, "mlflow_tracking_uri": tracking_uri}
    tracking.connect(tracking_uri, work_dir=work_dir)
    pipeline_root = work_dir / "kfp"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        enable_caching=True,
    )
    start = time.perf_counter()
    with cache_hits() as hits, warnings.catch_warnings():
        # kfp.local warns about every image whose name lacks "python" and about cluster-only settings.
        warnings.filterwarnings("ignore", message=".*(base image|no effect in the current local runner).*")
        outputs = pipeline(**params).outputs
    return LocalRun(
        params=params,
        outputs=outputs,
        pipeline_root=str(pipeline_root),
        tracking_uri=tracking_uri,
        wall_time_s=time.perf_counter() - start,
        cached=hits.tasks,
    )


def run_local(params: dict, work_dir: Path = tracking.DEFAULT_WORK_DIR) -> RunSummary:
    """Run the training pipeline in kfp.local under `work_dir` (see `run_in_kfp_local`), and summarise it."""
    run = run_in_kfp_local(lambda: create_pipeline(platform="local"), params, work_dir, validate_params)
    return summarise(
        run.params,
        run.outputs,
        pipeline_root=run.pipeline_root,
        tracking_uri=run.tracking_uri,
        wall_time_s=run.wall_time_s,
        cached=run.cached,
    )


def summarise(
    params: dict,
    outputs: dict,
    *,
    pipeline_root: str,
    tracking_uri: str,
    wall_time_s: float,
    cached: list[str],
) -> RunSummary:
    """Read the manifest, train_info and metrics that the run's artifacts hold."""
    shards_dir, model_dir, evaluation_dir = (outputs[key].path for key in ("shards", "model", "evaluation"))
    manifest = json.loads(Path(shards_dir, "manifest.json").read_text())
    return RunSummary(
        params=params,
        splits={split: info["examples"] for split, info in manifest["splits"].items()},
        train_info=json.loads(Path(model_dir, "train_info.json").read_text()),
        scores=json.loads(Path(evaluation_dir, "metrics.json").read_text()),
        blessed=bool(outputs["blessed"]),
        version=str(outputs["version"]),
        aliases=str(outputs["aliases"]),
        reason=str(outputs["reason"]),
        pipeline_root=pipeline_root,
        shards_dir=shards_dir,
        model_dir=model_dir,
        evaluation_dir=evaluation_dir,
        report=outputs["report"].path,
        tracking_uri=tracking_uri,
        wall_time_s=wall_time_s,
        cached=cached,
    )


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_summary(summary: RunSummary) -> str:
    """The closing report of `cityseg run`: a table of the run, the push decision, and where things are."""
    info, scores = summary.train_info, summary.scores
    rows = [
        ("splits", ", ".join(f"{split} {count}" for split, count in summary.splits.items())),
        ("model", f"{info['model']} ({info['num_params']:,} parameters), loss {info['loss']}"),
        ("size", f"{info['height']}x{info['width']}, batch {info['batch_size']}"),
        ("epochs", f"{info['epochs_run']} of {info['epochs']}"),
        ("training time", f"{info['training_time_s']:.1f} s ({info['train_images_per_s']:.1f} images/s)"),
        ("pipeline time", f"{summary.wall_time_s:.1f} s"),
        ("from cache", ", ".join(summary.cached) or "nothing"),
        (f"mean_dice ({scores['split']})", _score(scores["mean_dice"])),
        (f"mean_iou ({scores['split']})", _score(scores["mean_iou"])),
        *(
            (f"  IoU {name}", _score(scores.get(f"iou_{name}")))
            for i, name in enumerate(CATEGORY_NAMES)
            if i != VOID
        ),
    ]
    width = max(len(key) for key, _ in rows)
    lines = ["", "cityseg run summary", "-" * (width + 40)]
    lines += [f"{key:<{width}}  {value}" for key, value in rows]
    lines.append("-" * (width + 40))
    name = summary.params["registered_model"]
    if summary.blessed:
        aliases = summary.aliases or "none"
        lines.append(f"BLESSED: registered {name} version {summary.version}, aliases: {aliases}")
    else:
        version = f"version {summary.version} registered, " if summary.version else ""
        lines.append(f"NOT BLESSED: {version}aliases unchanged. {summary.reason}")
    lines += [
        "",
        f"artifacts      {summary.pipeline_root}",
        f"shards         {summary.shards_dir}",
        f"model          {summary.model_dir}",
        f"evaluation     {summary.evaluation_dir}",
        f"HTML report    {summary.report}",
        f"MLflow store   {summary.tracking_uri}",
    ]
    if summary.tracking_uri.startswith("sqlite:"):
        lines.append(f"MLflow UI      mlflow ui --backend-store-uri {summary.tracking_uri}")
    else:
        lines.append(f"MLflow UI      {summary.tracking_uri}")
    return "\n".join(lines)
