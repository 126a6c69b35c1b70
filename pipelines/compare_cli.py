"""`cityseg compare`: the model-comparison sweep in kfp.local, and its closing summary."""

from pathlib import Path

import click

from cityseg.components.compare.cli import format_table
from cityseg.pipelines.cli import local_run_errors, parameter_options, work_dir_option


def _sweep_inputs() -> dict:
    from cityseg.pipelines.compare import pipeline_inputs

    return pipeline_inputs()


# One `--name` option per sweep pipeline parameter, with its default and its description.
sweep_options = parameter_options(_sweep_inputs)


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
    from cityseg.components.compare.report import build_report, table_rows
    from cityseg.pipelines.compare import run_local_sweep

    with local_run_errors(ValueError):
        run = run_local_sweep(params, work_dir)
        # The KFP artifact has no .html suffix; a copy rebuilt from MLflow opens in any browser.
        report_path = Path(work_dir) / "compare" / run.outputs["parent_run_id"] / "report.html"
        rows = table_rows(build_report(run.outputs["parent_run_id"], report_path))
    click.echo(format_outcome(run, rows, report_path))
