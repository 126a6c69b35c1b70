"""`make bench`: run every tests/benchmarks/bench_*.py module and gather the figures into BENCHMARKS.md.

Each module runs in a fresh subprocess, so one that crashes (or leaks threads, or holds TensorFlow's
memory) is reported as failed instead of taking the others down. Each module's results are kept in
work/bench/results/<module>.json, so `--only data,train` refreshes those areas and BENCHMARKS.md
still shows the others from their last run.

    python -m tests.benchmarks                  # every module
    python -m tests.benchmarks --only data,train
"""

import argparse
import dataclasses
import datetime
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import BENCH_DIR, Result, machine

log = logging.getLogger("tests.benchmarks")

HERE = Path(__file__).parent
REPO = HERE.parent.parent
GPU_RESULTS = HERE / "gpu_results.json"
# A goal that names a bound, e.g. "ratio <= 1.10 (under 10% overhead)" or "value >= 0.80", can be checked.
GOAL_BOUND = re.compile(r"\b(ratio|value)\s*(<=|>=|<|>)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)")
COMPARE = {"<=": float.__le__, ">=": float.__ge__, "<": float.__lt__, ">": float.__gt__}
LOG_TAIL_LINES = 30


def discover() -> list[str]:
    """The area names of every bench_<area>.py module, sorted."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def goal_met(result: Result) -> bool | None:
    """Whether the result meets the bound its goal names; None when the goal names no bound."""
    match = GOAL_BOUND.search(result.goal)
    if match is None:
        return None
    subject, operator, bound = match.groups()
    measured = result.value if subject == "value" else result.ratio
    return None if measured is None else COMPARE[operator](float(measured), float(bound))


def run_module_here(area: str, work_dir: Path, results_path: Path) -> None:
    """Child side: import bench_<area>, call its run(work_dir) and write the results as JSON."""
    import importlib

    module = importlib.import_module(f"tests.benchmarks.bench_{area}")
    results = module.run(work_dir)
    results_path.write_text(json.dumps([dataclasses.asdict(result) for result in results], indent=1))


def run_module(area: str, work_dir: Path, timeout_s: float) -> dict:
    """Parent side: run one module in a fresh interpreter; returns its record (status, results, log tail)."""
    started = datetime.datetime.now(datetime.UTC)
    module_dir = work_dir / area
    module_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"{area}.log"
    with tempfile.TemporaryDirectory() as tmp:
        results_path = Path(tmp) / "results.json"
        argv = [
            sys.executable,
            "-m",
            "tests.benchmarks",
            "--child",
            area,
            "--work-dir",
            str(module_dir),
            "--results",
            str(results_path),
        ]
        start = time.perf_counter()
        with log_path.open("w") as out:
            try:
                code = subprocess.run(
                    argv, check=False, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s
                ).returncode
                error = None if code == 0 else f"exited with status {code}"
            except subprocess.TimeoutExpired:
                error = f"killed after the {timeout_s:.0f} s time limit"
        seconds = time.perf_counter() - start
        if error is None and not results_path.exists():
            error = "returned without writing its results"
        results = json.loads(results_path.read_text()) if error is None else []
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]) if error else ""
    return {
        "area": area,
        "module": f"tests/benchmarks/bench_{area}.py",
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "error": error,
        "log_tail": tail,
        "results": results,
    }


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


def stale_figures(benchmarks: str, repo: Path = REPO) -> dict[str, list[str]]:
    """Per document (README.md, docs/*.md), the figures it quotes that the benchmarks text does not hold."""
    from tests.docs.figures import unbacked

    documents = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    stale = {doc.relative_to(repo).as_posix(): unbacked(doc.read_text(), benchmarks) for doc in documents}
    return {name: figures for name, figures in stale.items() if figures}


def main(argv: list[str] | None = None) -> int:
    """Run the selected modules, keep their records, write BENCHMARKS.md; exit 1 if any module failed."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated areas, e.g. data,train (default: all)")
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR, help="scratch and results folder")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per module")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.child:
        run_module_here(args.child, args.work_dir, args.results)
        return 0

    available = discover()
    selected = [area for area in args.only.split(",") if area] or available
    unknown = sorted(set(selected) - set(available))
    if unknown:
        parser.error(
            f"--only: no tests/benchmarks/bench_<area>.py for {unknown}; areas: {', '.join(available)}"
        )
    records_dir = args.work_dir / "results"
    records_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for area in selected:
        log.info("bench %s ...", area)
        record = run_module(area, args.work_dir.resolve(), args.timeout)
        (records_dir / f"{area}.json").write_text(json.dumps(record, indent=1))
        if record["error"]:
            failed.append(area)
            log.error("bench %s failed (%s):\n%s", area, record["error"], record["log_tail"])
        else:
            log.info("bench %s: %d figures in %.0f s", area, len(record["results"]), record["seconds"])
    # Areas not run this time keep their last record, so BENCHMARKS.md always covers every module run so far.
    records = [
        json.loads((records_dir / f"{area}.json").read_text())
        for area in available
        if (records_dir / f"{area}.json").exists()
    ]
    partial = args.out.with_name(f".{args.out.name}.partial")
    partial.write_text(render(records, previous=args.out.read_text() if args.out.exists() else ""))
    partial.replace(args.out)
    log.info("wrote %s (%d areas)", args.out, len(records))
    for document, figures in stale_figures(args.out.read_text()).items():
        log.warning("%s quotes figures that %s no longer holds; update them: %s", document, args.out, figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
