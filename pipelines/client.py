"""The cluster side: compile the pipelines to IR YAML, submit runs and schedule retraining via kfp.Client."""

import dataclasses
import re
import tempfile
from pathlib import Path

from kfp import compiler

from cityseg.components import container_images
from cityseg.pipelines.steps import Target

PIPELINES = ("training", "compare", "objects")
# robfig/cron, which KFP's scheduler uses: seconds minutes hours day-of-month month day-of-week.
CRON_FIELDS = (
    ("seconds", 0, 59),
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
CRON_NAMES = {
    "month": ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    "day of week": ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
}
CRON_ITEM = re.compile(r"^(\*|\?|[0-9A-Z]+(-[0-9A-Z]+)?)(/[0-9]+)?$")


def load_pipeline(
    name: str, registry: str = container_images.DEFAULT_REGISTRY, tag: str = container_images.DEFAULT_TAG
):
    """The cluster pipeline `name` ("training", "compare" or "objects") on `registry`/`tag`.

    Raises:
        ValueError: an unknown pipeline name.
    """
    if name == "training":
        from cityseg.pipelines.training import create_pipeline

        return create_pipeline(Target(registry=registry, tag=tag))
    if name == "compare":
        from cityseg.pipelines.sweep import create_pipeline as create_sweep

        return create_sweep(Target(registry=registry, tag=tag))
    if name == "objects":
        from cityseg.pipelines.objects import create_pipeline as create_objects

        return create_objects(Target(registry=registry, tag=tag))
    raise ValueError(f"unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}")


def compile_pipeline(
    name: str,
    out: str | Path,
    registry: str = container_images.DEFAULT_REGISTRY,
    tag: str = container_images.DEFAULT_TAG,
) -> Path:
    """Write the IR YAML of pipeline `name` to `out` (atomically) and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".yaml", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        compiler.Compiler().compile(load_pipeline(name, registry, tag), str(tmp_path))
        tmp_path.replace(out)
    finally:
        tmp_path.unlink(missing_ok=True)
    return out


def _value(field: str, text: str, low: int, high: int) -> int:
    names = CRON_NAMES.get(field, ())
    number = names.index(text) + (1 if field == "month" else 0) if text in names else None
    if number is None:
        if not text.isdigit():
            raise ValueError(f"{field}: {text!r} is not a number")
        number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{field}: {number} is outside {low}-{high}")
    return number


def validate_cron(expression: str) -> str:
    """Check a KFP cron expression: 6 fields, seconds first (e.g. "0 0 3 * * 1" = Mondays 03:00).

    Raises:
        ValueError: naming the field that is wrong.
    """
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; KFP cron needs 6: "
            "seconds minutes hours day-of-month month day-of-week (e.g. '0 0 3 * * 1')"
        )
    for text, (field, low, high) in zip(fields, CRON_FIELDS, strict=True):
        for item in text.upper().split(","):
            match = CRON_ITEM.match(item)
            if not match:
                raise ValueError(f"{field}: {item!r} is not a cron value, range or step")
            if item.startswith("?") and field not in ("day of month", "day of week"):
                raise ValueError(f"{field}: '?' is only allowed in day of month and day of week")
            bounds = match.group(1)
            if bounds not in ("*", "?"):
                values = [_value(field, part, low, high) for part in bounds.split("-")]
                if len(values) == 2 and values[0] > values[1]:
                    raise ValueError(f"{field}: range {bounds} runs backwards")
            if match.group(3) and int(match.group(3)[1:]) < 1:
                raise ValueError(f"{field}: step must be at least 1 in {item!r}")
    return " ".join(fields)


def connect(host: str):
    """A kfp.Client for the KFP API at `host`."""
    import kfp

    return kfp.Client(host=host)


def submit(host: str, package: Path, params: dict, experiment: str, run_name: str | None = None) -> str:
    """Start one run of the compiled `package`; returns the run id."""
    result = connect(host).create_run_from_pipeline_package(
        str(package), arguments=params, run_name=run_name, experiment_name=experiment
    )
    return result.run_id


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How a recurring retraining behaves.

    Attributes:
        max_concurrency: runs at once; 1, so two scheduled runs never race on one registry.
        no_catchup: after a pause, start one run now instead of every run that was missed.
        enabled: whether the schedule starts runs as soon as it is created.
    """

    max_concurrency: int = 1
    no_catchup: bool = True
    enabled: bool = True

    def __post_init__(self):
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")


@dataclasses.dataclass(frozen=True)
class Scheduled:
    """A created recurring run, as the KFP API answered: id, state (ENABLED or DISABLED) and settings."""

    recurring_run_id: str
    state: str
    max_concurrency: int
    no_catchup: bool


def _state(recurring) -> str:
    status = str(recurring.status or "")
    if status and status != "STATUS_UNSPECIFIED":
        return status
    mode = str(recurring.mode or "")
    return {"ENABLE": "ENABLED", "DISABLE": "DISABLED"}.get(mode, mode or "unknown")


def schedule(
    host: str,
    package: Path,
    cron: str,
    *,
    params: dict,
    experiment: str,
    name: str,
    config: ScheduleConfig = ScheduleConfig(),
) -> Scheduled:
    """Create a recurring run of `package` on `cron` (validated first); returns what the API answered."""
    cron = validate_cron(cron)
    client = connect(host)
    experiment_id = client.create_experiment(name=experiment).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=name,
        cron_expression=cron,
        params=params,
        pipeline_package_path=str(package),
        max_concurrency=config.max_concurrency,
        no_catchup=config.no_catchup,
        enabled=config.enabled,
    )
    return Scheduled(
        recurring_run_id=recurring.recurring_run_id,
        state=_state(recurring),
        max_concurrency=int(recurring.max_concurrency or config.max_concurrency),
        no_catchup=bool(recurring.no_catchup),
    )


def list_schedules(host: str) -> list[dict]:
    """Every recurring run: id, name, cron, status."""
    response = connect(host).list_recurring_runs(page_size=100)
    return [
        {
            "id": run.recurring_run_id,
            "name": run.display_name,
            "cron": run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else "",
            "status": run.status or "",
        }
        for run in response.recurring_runs or []
    ]


def delete_schedule(host: str, recurring_run_id: str) -> None:
    """Delete the recurring run `recurring_run_id`."""
    connect(host).delete_recurring_run(recurring_run_id)
