"""`cityseg report`: a sweep's comparison report, rebuilt from MLflow alone."""

from pathlib import Path

import click

from cityseg.components import tracking


def format_table(rows: list[dict]) -> str:
    """The per-run table as aligned text for the terminal: config, seed, dice, IoU, time, speed."""
    header = (
        f"{'configuration':<36} {'seed':>4} {'params':>10} {'mean_dice':>9} {'mean_iou':>8} {'train s':>8} "
        f"{'img/s':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:

        def number(key: str, spec: str, row=row) -> str:
            return "–" if row[key] is None else format(row[key], spec)

        lines.append(
            f"{row['config']:<36} {row['seed']:>4} {number('num_params', ',d'):>10} "
            f"{number('mean_dice', '.4f'):>9} {number('mean_iou', '.4f'):>8} "
            f"{number('training_time_s', '.1f'):>8} {number('train_images_per_s', '.1f'):>7}"
        )
    return "\n".join(lines)


@click.command()
@click.option("--parent-run", "parent_run_id", required=True, help="MLflow run id of the sweep's parent run.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write; report.md, its figures and the per-run .csv go beside it "
    "[default: work/compare/<run>/report.html]",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else work/mlflow.",
)
def report(parent_run_id: str, out: Path | None, tracking_uri: str | None) -> None:
    """Rebuild a sweep's comparison report from MLflow alone."""
    from cityseg.components.sweep.report import build_report, table_rows

    try:
        uri = tracking.connect(tracking_uri)
        out = out or tracking.DEFAULT_WORK_DIR / "compare" / parent_run_id / "report.html"
        results, best = build_report(parent_run_id, out)
    except (ValueError, tracking.TrackingUnavailableError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_table(table_rows(results)))
    click.echo(
        f"\nbest:     {best.label} seed {best.seed}, chosen on select (mean_dice "
        f"{best.select_mean_dice:.4f}), judged on val (mean_dice {best.mean_dice:.4f}), run {best.run_id}"
        f"\nreport:   {out.resolve()}\nmarkdown: {out.with_suffix('.md').resolve()}"
        f"\ntable:    {out.with_suffix('.csv').resolve()}\nMLflow:   {uri}"
    )
