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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import BENCH_DIR
from tests.benchmarks.render import render

log = logging.getLogger("tests.benchmarks")

HERE = Path(__file__).parent
REPO = HERE.parent.parent
LOG_TAIL_LINES = 30


def discover() -> list[str]:
    """The area names of every bench_<area>.py module, sorted."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


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
