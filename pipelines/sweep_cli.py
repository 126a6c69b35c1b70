"""`cityseg compare`: the model-comparison sweep in kfp.local, and its closing summary."""

from pathlib import Path

import click
from click.core import ParameterSource

from cityseg.components.sweep.cli import format_table
from cityseg.components.sweep.presets import DEFAULT_PRESET, PRESETS, preset_params
from cityseg.pipelines.cli import local_run_errors, parameter_options, verbose_option, work_dir_option


def _sweep_inputs() -> dict:
    from cityseg.pipelines.local import sweep_inputs

    return sweep_inputs()


# One `--name` option per sweep pipeline parameter, with its default and its description.
sweep_options = parameter_options(_sweep_inputs)


def apply_preset(ctx: click.Context, preset: str, params: dict) -> dict:
    """`params` with the preset's values wherever the user left a flag at its default."""
    chosen = dict(params)
    for name, value in preset_params(preset).items():
        if name in chosen and ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            chosen[name] = value
    return chosen


def format_outcome(run, rows: list[dict], report_path: Path) -> str:
    """The closing lines of `cityseg compare`: table, best config, push decision, where things are."""
    from cityseg.pipelines.summary import decision, mlflow_ui

    outputs, params = run.outputs, run.params
    configurations = len({row["config"] for row in rows})
    lines = [
        "",
        f"cityseg compare: {len(rows)} runs ({configurations} configurations x seeds) "
        f"in {run.wall_time_s:.0f} s",
        "",
        format_table(rows),
        "",
        f"best: {outputs['best_config']} (chosen on select; judged on val: mean_dice "
        f"{outputs['best_mean_dice']:.4f}, "
        f"run {outputs['best_run_id']})",
        decision(
            outputs["blessed"],
            params["registered_model"],
            outputs["version"],
            outputs["aliases"],
            outputs["reason"],
        ),
        "",
        f"from cache     {', '.join(run.cached) or 'nothing'}",
        f"run folder     {run.run_dir}",
        f"task logs      {run.log_dir}",
        f"report         {report_path.resolve()}",
        f"markdown       {report_path.with_suffix('.md').resolve()} (figures and per-run .csv beside it)",
        f"KFP artifact   {outputs['report'].path}",
        f"parent run     {outputs['parent_run_id']}",
        f"MLflow store   {run.tracking_uri}",
        "",
        "next steps:",
        f"  open {report_path.resolve()}",
        f"  cityseg report --parent-run {outputs['parent_run_id']}   (rebuilds the report from MLflow)",
        f"  {mlflow_ui(run.tracking_uri)}",
    ]
    return "\n".join(lines)


@click.command()
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default=DEFAULT_PRESET,
    show_default=True,
    help="; ".join(f"{name}: {preset.purpose}" for name, preset in PRESETS.items())
    + ". Flags given explicitly override the preset.",
)
@sweep_options
@work_dir_option
@verbose_option
@click.pass_context
def compare(ctx: click.Context, preset: str, work_dir: Path, verbose: bool, **params) -> None:
    """Run the model-comparison sweep locally (kfp.local): a preset's configurations and seeds, a report."""
    from cityseg.components.sweep.report import build_report, table_rows
    from cityseg.pipelines.local import run_local_sweep

    with local_run_errors(ValueError):
        run = run_local_sweep(apply_preset(ctx, preset, params), work_dir, verbose)
        # The KFP artifact has no .html suffix; a copy rebuilt from MLflow opens in any browser.
        report_path = Path(work_dir) / "compare" / run.outputs["parent_run_id"] / "report.html"
        results, _ = build_report(run.outputs["parent_run_id"], report_path)
    click.echo(format_outcome(run, table_rows(results), report_path))
