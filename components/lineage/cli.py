"""`cityseg lineage`: from a registered version (default the champion) back to its run and its data."""

import json

import click

_ERRORS = (ValueError, ConnectionError)


def _changes(changes: dict | None) -> str:
    if changes is None:
        return "unknown (no statistics for one of the two)"
    if not changes:
        return "no frames added or removed"
    parts = []
    for split, cities in changes.items():
        total = sum(cities.values())
        detail = ", ".join(f"{city} {count:+d}" for city, count in cities.items())
        parts.append(f"{split} {total:+d} ({detail})")
    return "; ".join(parts)


def format_lineage(item: dict) -> str:
    """The chain as text: version, then run and parameters, then data, then the previous champion."""
    aliases = " ".join(f"@{alias}" for alias in item["aliases"]) or "no aliases"
    run, data, previous = item["run"], item["data"], item["previous_champion"]
    params = " ".join(f"{key}={value}" for key, value in run.get("params", {}).items()) or "unknown"
    frames = ", ".join(f"{s} {n}" for s, n in (data["frames"] or {}).items()) or "unknown"
    lines = [
        f"{item['name']} v{item['version']} ({aliases}), mean_dice {item['mean_dice'] or 'n/a'}, "
        f"blessed {item['blessed'] or 'unknown'}: {item['reason']}",
        f"  run       MLflow {run.get('id') or 'unknown'} (experiment {run.get('experiment_id', '?')}), "
        f"KFP run {run['kfp_run_id'] or 'unknown'}",
        f"            pipeline {run['pipeline'] or 'unknown'} {run['pipeline_version'] or ''}".rstrip()
        + f", commit {run['git_commit'] or 'unknown'}",
        f"  params    {params}",
        f"  data      fingerprint {data['fingerprint'] or 'unknown'}",
        f"            shards {data['manifest_hash'] or 'unknown'}, frames {frames}",
        f"            statistics {data['statistics'] or 'unknown'}",
    ]
    if previous is None:
        lines.append("  previous  no champion before this version")
    else:
        same = " (same data)" if previous["same_data"] else ""
        lines.append(
            f"            vs champion v{previous['version']}'s data{same}: {_changes(data['changes'])}"
        )
        lines.append(
            f"  previous  champion v{previous['version']}, mean_dice {previous['mean_dice'] or 'n/a'} "
            f"re-scored on this data; fingerprint {previous['fingerprint'] or 'unknown'}"
        )
    return "\n".join(lines)


@click.command()
@click.argument("ref", default="models:/cityseg@champion")
@click.option("--name", default="cityseg", show_default=True, help="Registered model of a bare VERSION.")
@click.option("--json", "as_json", is_flag=True, help="Print the lineage as JSON.")
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
def lineage(ref: str, name: str, as_json: bool, tracking_uri: str | None) -> None:
    """Explain a version (models:/NAME@ALIAS, models:/NAME/N or N): its run, data and previous champion."""
    from cityseg.components import tracking
    from cityseg.components.lineage.core import describe

    try:
        tracking.connect(tracking_uri)
        item = describe(ref, name)
    except _ERRORS as err:
        raise click.ClickException(str(err)) from None
    click.echo(json.dumps(item, indent=2) if as_json else format_lineage(item))
