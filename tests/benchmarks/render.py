"""BENCHMARKS.md from the benchmark modules' records: the tables, the GPU section, and the areas kept
from the BENCHMARKS.md it replaces."""

import datetime
import json
import re
from pathlib import Path

from tests.benchmarks.common import Result, machine

GPU_RESULTS = Path(__file__).with_name("gpu_results.json")
# A goal that names a bound, e.g. "ratio <= 1.10 (under 10% overhead)" or "value >= 0.80", can be checked.
GOAL_BOUND = re.compile(r"\b(ratio|value)\s*(<=|>=|<|>)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)")
COMPARE = {"<=": float.__le__, ">=": float.__ge__, "<": float.__lt__, ">": float.__gt__}


def goal_met(result: Result) -> bool | None:
    """Whether the result meets the bound its goal names; None when the goal names no bound."""
    match = GOAL_BOUND.search(result.goal)
    if match is None:
        return None
    subject, operator, bound = match.groups()
    measured = result.value if subject == "value" else result.ratio
    return None if measured is None else COMPARE[operator](float(measured), float(bound))


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {unit}".strip()


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") or "–"


def results_table(results: list[Result], date: str) -> list[str]:
    """Markdown table rows for results: figure, value, baseline, ratio, goal, met, command, machine, date."""
    lines = [
        "| figure | value | baseline | ratio | goal | met | command | machine | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    here = machine()
    for result in results:
        met = {True: "yes", False: "**no**", None: "–"}[goal_met(result)]
        baseline = (
            f"{_number(result.baseline_value, result.unit)} ({result.baseline_name})"
            if result.baseline_name
            else "–"
        )
        ratio = "–" if result.ratio is None else f"{result.ratio:.3f}"
        command = f"`{result.command}`" if result.command else "–"
        lines.append(
            f"| {_cell(result.name)} | {_number(result.value, result.unit)} | {_cell(baseline)} | {ratio} | "
            f"{_cell(result.goal)} | {met} | {_cell(command)} | {_cell(result.machine or here)} | {date} |"
        )
    details = [f"- **{result.name}**: {result.detail}" for result in results if result.detail]
    return [*lines, "", *details] if details else lines


def to_results(records: list[dict]) -> list[Result]:
    """Result objects from the JSON dicts a child wrote."""
    return [Result(**record) for record in records]


def mixed_precision_results(rows: list[dict], facts: dict) -> list[Result]:
    """Per model, mixed-precision training images/s against float32 on one GPU (gpu_results.json rows)."""
    by_key = {(row.get("model"), row.get("policy")): row for row in rows}
    results = []
    for (model, policy), row in by_key.items():
        baseline = by_key.get((model, "float32"))
        if policy != "mixed_float16" or baseline is None:
            continue
        results.append(
            Result(
                name=f"{model} training images/s, mixed precision, {row.get('height')}x{row.get('width')}",
                value=float(row["images_per_s"]),
                unit="img/s",
                baseline_name="float32",
                baseline_value=float(baseline["images_per_s"]),
                goal="ratio > 1 (tensor cores pay off)",
                command=str(facts.get("command", "")),
                machine=str(facts.get("device", "")),
                detail=f"batch {row.get('batch_size')}, {row.get('params'):,} parameters",
            )
        )
    return results


def gpu_section(path: Path) -> list[str]:
    """The GPU figures the train helper measured on a lent device (gpu_results.json), when present.

    The file holds facts (device, date, command, ...) and a "results" list of rows; every row is shown,
    and each model's mixed-precision row is also set against its float32 row.
    """
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    rows = data.get("results", [])
    facts = {key: value for key, value in data.items() if key != "results"}
    date = str(facts.get("date", ""))
    lines = ["## gpu (tests/benchmarks/gpu_results.json)", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    lines.append("")
    if results := mixed_precision_results(rows, facts):
        lines += [*results_table(results, date), ""]
    if rows:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += [
            "| " + " | ".join(_cell(str(row.get(column, ""))) for column in columns) + " |" for row in rows
        ]
    return [*lines, ""]


SECTION = re.compile(r"^## (\S+) \(", re.MULTILINE)


def previous_sections(text: str) -> dict[str, tuple[str, str]]:
    """Per area of an earlier BENCHMARKS.md: its summary row and its section, as written then."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("area", "---"):
            rows[cells[0]] = line
    starts = list(SECTION.finditer(text))
    sections = {}
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        if match.group(1) in rows:
            sections[match.group(1)] = (rows[match.group(1)], text[match.start() : end].rstrip() + "\n")
    return sections


def render(records: list[dict], gpu_path: Path = GPU_RESULTS, previous: str = "") -> str:
    """BENCHMARKS.md from the module records (and gpu_results.json when present).

    An area with no record here (run on another machine, or before `work/` was cleared) keeps its
    summary row and section from `previous`, the BENCHMARKS.md it replaces, as measured then.
    """
    recorded = {record["area"] for record in records}
    carried = {area: kept for area, kept in previous_sections(previous).items() if area not in recorded}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Gathered by `make bench` (`python -m tests.benchmarks`), last on {now}, on {machine()}.",
        "Each figure is set against its baseline: ratio = value / baseline; `met` checks the goal's bound.",
        "",
    ]
    summary = {area: row for area, (row, _) in carried.items()}
    for record in records:
        status = "ok" if record["error"] is None else f"**failed**: {record['error']}"
        summary[record["area"]] = (
            f"| {record['area']} | {status} | {len(record['results'])} | {record['seconds']} "
            f"| {record['date']} |"
        )
    header = ["| area | status | figures | time (s) | date |", "|---|---|---|---|---|"]
    lines += [*header, *(summary[area] for area in sorted(summary)), ""]
    sections = {area: section for area, (_, section) in carried.items()}
    sections.update({record["area"]: _section(record) for record in records})
    lines += [sections[area] for area in sorted(sections)]
    lines += gpu_section(gpu_path)
    return "\n".join(lines).rstrip() + "\n"


def _section(record: dict) -> str:
    """The `## area` section of one module record."""
    lines = [f"## {record['area']} ({record['module']})", ""]
    if record["error"] is not None:
        lines += [
            f"Failed: {record['error']}. Last lines of its log:",
            "",
            "```",
            record["log_tail"],
            "```",
            "",
        ]
    if record["results"]:
        lines += [*results_table(to_results(record["results"]), record["date"]), ""]
    return "\n".join(lines)
