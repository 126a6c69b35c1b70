"""`cityseg compare` (the model-comparison sweep in kfp.local) and `cityseg report` (rebuilt from MLflow)."""

from pathlib import Path

import click

from cityseg import tracking
from cityseg.pipelines.cli import local_run_errors, parameter_options, work_dir_option


def _sweep_inputs() -> dict:
    from cityseg.pipelines.compare import pipeline_inputs

    return pipeline_inputs()


# One `--name` option per sweep pipeline parameter, with its default and its description.
sweep_options = parameter_options(_sweep_inputs)


def format_table(rows: list[dict]) -> str:
    """The comparison table as aligned text for the terminal: config, dice, IoU, time, speed."""
    header = (
        f"{'configuration':<36} {'params':>10} {'mean_dice':>9} {'mean_iou':>8} {'train s':>8} {'img/s':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:

        def number(key: str, spec: str, row=row) -> str:
            return "–" if row[key] is None else format(row[key], spec)

        lines.append(
            f"{row['config']:<36} {number('num_params', ',d'):>10} {number('mean_dice', '.4f'):>9} "
            f"{number('mean_iou', '.4f'):>8} {number('training_time_s', '.1f'):>8} "
            f"{number('train_images_per_s', '.1f'):>7}"
        )
    return "\n".join(lines)


@click.command()
@click.option("--parent-run", "parent_run_id", required=True, help="MLflow run id of the sweep's parent run.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write; the table goes beside it as .csv [default: work/compare/<run>/report.html]",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else work/mlflow.",
)
def report(parent_run_id: str, out: Path | None, tracking_uri: str | None) -> None:
    """Rebuild a sweep's comparison report from MLflow alone."""
    from cityseg.compare.report import build_report, table_rows

    try:
        uri = tracking.connect(tracking_uri)
        out = out or Path("work") / "compare" / parent_run_id / "report.html"
        results = build_report(parent_run_id, out)
    except (ValueError, tracking.TrackingUnavailableError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_table(table_rows(results)))
    click.echo(f"\nreport: {out.resolve()}\ntable:  {out.with_suffix('.csv').resolve()}\nMLflow: {uri}")


def format_outcome(run, rows: list[dict], report_path: Path) -> str:
    """The closing lines of `cityseg compare`: table, best config, push decision, where things are."""
    outputs, params = run.outputs, run.params
    lines = [
        "",
        f"cityseg compare: {len(rows)} configurations in {run.wall_time_s:.0f} s",
        "",
        format_table(rows),
        "",
    ]
    best_dice = outputs["best_mean_dice"]
    lines.append(f"best: {outputs['best_config']} (mean_dice {best_dice:.4f}, run {outputs['best_run_id']})")
    if outputs["blessed"]:
        lines.append(
            f"BLESSED: registered {params['registered_model']} version {outputs['version']}, "
            f"aliases: {outputs['aliases'] or 'none'}"
        )
    else:
        version = f"version {outputs['version']} registered, " if outputs["version"] else ""
        lines.append(f"NOT BLESSED: {version}aliases unchanged. {outputs['reason']}")
    lines += [
        "",
        f"from cache     {', '.join(run.cached) or 'nothing'}",
        f"report         {report_path.resolve()} (and {report_path.with_suffix('.csv').name} beside it)",
        f"KFP artifact   {outputs['report'].path}",
        f"parent run     {outputs['parent_run_id']}",
        f"rebuild        cityseg report --parent-run {outputs['parent_run_id']}",
        f"artifacts      {run.pipeline_root}",
        f"MLflow store   {run.tracking_uri}",
    ]
    if run.tracking_uri.startswith("sqlite:"):
        lines.append(f"MLflow UI      mlflow ui --backend-store-uri {run.tracking_uri}")
    return "\n".join(lines)


@click.command()
@sweep_options
@work_dir_option
def compare(work_dir: Path, **params) -> None:
    """Run the model-comparison sweep locally (kfp.local): every model x loss x augmentation, and a report."""
    from cityseg.compare.report import build_report, table_rows
    from cityseg.pipelines.compare import run_local_sweep

    with local_run_errors(ValueError):
        run = run_local_sweep(params, work_dir)
        # The KFP artifact has no .html suffix; a copy rebuilt from MLflow opens in any browser.
        report_path = Path(work_dir) / "compare" / run.outputs["parent_run_id"] / "report.html"
        rows = table_rows(build_report(run.outputs["parent_run_id"], report_path))
    click.echo(format_outcome(run, rows, report_path))
