"""`cityseg run` and `cityseg compare`: a pipeline in kfp.local, each run in its own folder.

By default tasks run as subprocesses of this Python (SubprocessRunner without a venv), so they use
the installed project exactly as the container images do. With the "docker" runner each task runs
in its own image under the cluster's hardening (`docker_tasks`). Each run gets `WORK/runs/<pipeline>-<time>/`,
holding its artifacts and `logs/<task>.log`. Local caching is on, in `WORK/cache/`: a second run
with the same data and sizes reuses the synth, remap and shard outputs of an earlier run.
"""

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cityseg
from cityseg.components import image_base, tracking
from cityseg.pipelines import docker_tasks
from cityseg.pipelines.console import task_console
from cityseg.pipelines.steps import COMPONENTS, LOCAL, Steps
from cityseg.pipelines.summary import RunSummary, summarise

RUNNERS = ("subprocess", "docker")
# The package whose sources the images must hold: the one this process runs.
PACKAGE = Path(cityseg.__file__).parent


@dataclass(frozen=True)
class LocalRun:
    """What a pipeline run in kfp.local produced."""

    params: dict
    outputs: dict
    run_dir: str
    log_dir: str
    tracking_uri: str
    wall_time_s: float
    cached: list[str]


def pipeline_inputs() -> dict:
    """The training pipeline's parameters: name -> KFP InputSpec (type, default, description)."""
    from cityseg.pipelines.training import create_pipeline

    return dict(create_pipeline(LOCAL).component_spec.inputs)


def sweep_inputs() -> dict:
    """The sweep pipeline's parameters: name -> KFP InputSpec (type, default, description)."""
    from cityseg.pipelines.sweep import create_pipeline

    return dict(create_pipeline(LOCAL).component_spec.inputs)


def default_params() -> dict:
    """Every training pipeline parameter with its default value."""
    return {name: spec.default for name, spec in pipeline_inputs().items()}


def new_run_dir(work_dir: Path, name: str) -> Path:
    """A fresh folder `work_dir/runs/<name>-<YYYYmmdd-HHMMSS>[-n]` for one run."""
    stem = Path(work_dir) / "runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir, count = stem, 1
    while run_dir.exists():
        count += 1
        run_dir = stem.with_name(f"{stem.name}-{count}")
    run_dir.mkdir(parents=True)
    return run_dir


def task_runner(runner: str, params: dict, work_dir: Path):
    """The kfp.local runner named `runner`, for a run with `params` whose runs are under `work_dir`.

    Raises:
        ValueError: an unknown runner; for "docker", a tracking URI that is no server, a data folder
            that does not exist, or an image that is not built from this checkout's sources.
    """
    from kfp import local

    if runner == "subprocess":
        return local.SubprocessRunner(use_venv=False)
    if runner != "docker":
        raise ValueError(f"unknown runner {runner!r}; known: {', '.join(RUNNERS)}")
    docker_tasks.check_tracking_uri(params["mlflow_tracking_uri"])
    references = {Steps().image(step) for step in COMPONENTS}
    labels = docker_tasks.image_labels()
    problems = docker_tasks.image_problems(references, labels, image_base.source_key(PACKAGE))
    if problems:
        raise ValueError(f"{'; '.join(problems)}: build the images with `make images CPU_ONLY=1`")
    # Earlier runs' outputs, read-only: a cached task's outputs stay in the run that made them.
    runs = Path(work_dir, "runs").resolve()
    runs.mkdir(parents=True, exist_ok=True)
    folders = {str(runs): False, **docker_tasks.host_folders(params)}
    return local.DockerRunner(**docker_tasks.container_run_args(folders))


def run_in_kfp_local(
    create: Callable[[], object],
    params: dict,
    work_dir: Path,
    validate: Callable[[dict], None],
    verbose: bool = False,
    runner: str = "subprocess",
) -> LocalRun:
    """Run the pipeline `create()` builds in kfp.local under `work_dir`, with `params` over its defaults.

    Prints one line per task start and end (with `verbose`, every line of every task). `runner` is
    "subprocess" (tasks in this Python) or "docker" (each task in its image, see `docker_tasks`).

    Raises:
        cityseg.pipelines.validation.ParameterError: `validate` rejects a parameter, before any step runs.
        ValueError: the runner cannot run these tasks (see `task_runner`).
        RuntimeError: a step failed (the end of its log is printed above, with the log's path).
    """
    from kfp import local

    pipeline = create()
    params = {**{name: spec.default for name, spec in pipeline.component_spec.inputs.items()}, **params}
    validate(params)
    work_dir = Path(work_dir).resolve()
    # Pin the store explicitly, so every step (and the summary) uses the same one whatever the cwd.
    tracking_uri = tracking.resolve_tracking_uri(params["mlflow_tracking_uri"] or None, work_dir)
    params = {**params, "mlflow_tracking_uri": tracking_uri}
    if runner == "docker":
        params = docker_tasks.params_with_folders(params)
    kfp_runner = task_runner(runner, params, work_dir)
    tracking.connect(tracking_uri, work_dir=work_dir)
    run_dir = new_run_dir(work_dir, pipeline.component_spec.name)
    if runner == "docker":
        docker_tasks.writable_by_tasks(run_dir)
    local.init(
        runner=kfp_runner,
        pipeline_root=str(run_dir),
        enable_caching=True,
        cache_root=str(work_dir / "cache"),
    )
    start = time.perf_counter()
    with task_console(run_dir / "logs", verbose) as console, warnings.catch_warnings():
        # kfp.local warns about every image whose name lacks "python": ours carry the project instead.
        warnings.filterwarnings("ignore", message=".*base image.*")
        outputs = pipeline(**params).outputs
    return LocalRun(
        params=params,
        outputs=outputs,
        run_dir=str(run_dir),
        log_dir=str(run_dir / "logs"),
        tracking_uri=tracking_uri,
        wall_time_s=time.perf_counter() - start,
        cached=console.cached,
    )


def run_local(
    params: dict,
    work_dir: Path = tracking.DEFAULT_WORK_DIR,
    verbose: bool = False,
    runner: str = "subprocess",
) -> RunSummary:
    """Validate `params`, run the training pipeline in kfp.local under `work_dir` with `runner`, and
    summarise it."""
    from cityseg.pipelines.training import create_pipeline
    from cityseg.pipelines.validation import validate_params

    return summarise(
        run_in_kfp_local(lambda: create_pipeline(LOCAL), params, work_dir, validate_params, verbose, runner)
    )


def run_local_sweep(
    params: dict, work_dir: Path = tracking.DEFAULT_WORK_DIR, verbose: bool = False
) -> LocalRun:
    """Validate `params` and run the comparison sweep in kfp.local under `work_dir`."""
    from cityseg.pipelines.sweep import create_pipeline
    from cityseg.pipelines.validation import validate_sweep_params

    return run_in_kfp_local(lambda: create_pipeline(LOCAL), params, work_dir, validate_sweep_params, verbose)
