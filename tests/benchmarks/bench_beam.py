"""The Beam path against the local pool on one machine: remap, shard and the statistics, and cost growth.

Both engines run the same steps on the same 1024x2048 source, side by side; the figure is frames/s of
Beam's DirectRunner (threads, one per core) over the pool's. The source repeats a few synthetic frames
under new names (hard links): per frame the work is the same as for distinct frames, and 2,000 frames
take no extra disk. Cost growth is seconds per frame at the larger count over the smaller one.
"""

import dataclasses
import math
import os
import resource
import shutil
from pathlib import Path

from cityseg.components import cityscapes
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.runner import RunnerConfig
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import write_shards
from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate
from cityseg.components.validate.statistics import compute_statistics
from tests.benchmarks.common import Result, machine, timed

FULL_SIZE = (1024, 2048)
SHARD_SIZE = (256, 512)
# The counts; CITYSEG_BENCH_BEAM_FRAMES=24,96 runs a reduced pair on a shared machine.
FRAME_COUNTS = (120, 2000)
RUNNERS = {"pool": RunnerConfig(), "beam": RunnerConfig("beam")}
# The on-paper Dataflow estimate: Dataflow batch list prices (us-central1), n2-standard-4 workers with
# the 25 GB disk Dataflow Shuffle leaves them, enough workers to do the work in 10 minutes (at most
# 20), and minutes for the job and its workers to start. The per-frame CPU cost is measured here.
DATAFLOW_FRAMES = (5_000, 500_000)
DATAFLOW_VCPUS, DATAFLOW_MEMORY_GB, DATAFLOW_DISK_GB, DATAFLOW_MAX_WORKERS = 4, 16, 25, 20
PRICE_VCPU_H, PRICE_GB_H, PRICE_DISK_GB_H = 0.056, 0.003557, 0.000054
DATAFLOW_START_MIN, DATAFLOW_TARGET_S = 3.0, 600
# Frame i goes to SPLIT_OF[i % 10]: 70% train, 20% val, 10% test.
SPLIT_OF = ("train",) * 7 + ("val",) * 2 + ("test",)


def _base_frames(work: Path) -> list[cityscapes.Frame]:
    base = work / "beam_base_1024x2048"
    if not base.exists():
        generate(
            SynthConfig(out=str(base), cities=3, frames_per_city=4, height=FULL_SIZE[0], width=FULL_SIZE[1])
        )
    return cityscapes.find_frames(cityscapes.Source(str(base)))


def _source(work: Path, frames: int) -> Path:
    """A Cityscapes folder of `frames` frames, hard links to the base frames under new names."""
    root = work / f"beam_source_{frames}"
    if root.exists():
        return root
    base = _base_frames(work)
    for index in range(frames):
        frame = base[index % len(base)]
        split = SPLIT_OF[index % len(SPLIT_OF)]
        stem = f"bench{index // 100:02d}_{index:06d}_000019"
        city = f"bench{index // 100:02d}"
        for kind, name, suffix in (
            ("leftImg8bit", frame.image, cityscapes.IMAGE_SUFFIX),
            ("gtFine", frame.label, cityscapes.LABEL_SUFFIX),
        ):
            target = root / kind / split / city / f"{stem}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(work / "beam_base_1024x2048" / name, target)
    return root


STEPS = ("remap", "shard", "statistics")


def _cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its finished child processes."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _steps(source: Path, out: Path, runner: RunnerConfig) -> dict[str, float]:
    """Seconds of remap, shard and statistics of `source` on `runner`, each step timed alone; the CPU
    seconds of all three (`cpu`), and the bytes of the category masks and of the shards."""
    shutil.rmtree(out, ignore_errors=True)
    workers = os.cpu_count() or 1
    seconds = {}
    cpu_start = _cpu_seconds()
    seconds["remap"], _ = timed(
        remap, RemapConfig(source, out / "categories", workers=workers, runner=runner)
    )
    shard_config = ShardConfig(source, out / "categories", out / "shards", 4, *SHARD_SIZE, workers=workers)
    seconds["shard"], manifest = timed(write_shards, dataclasses.replace(shard_config, runner=runner))
    seconds["statistics"], _ = timed(compute_statistics, out / "shards", manifest, workers, runner)
    seconds["cpu"] = _cpu_seconds() - cpu_start
    seconds["mask_bytes"], seconds["shard_bytes"] = (
        _folder_bytes(out / "categories"),
        _folder_bytes(out / "shards"),
    )
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def run(work_dir: Path) -> list[Result]:
    """Beam vs pool frames/s per step at each count, and each engine's cost growth between the counts."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    counts = (
        tuple(int(n) for n in os.environ.get("CITYSEG_BENCH_BEAM_FRAMES", "").split(",") if n) or FRAME_COUNTS
    )
    # Alternate the engines, best of 2 each: on a shared machine the load drifts between runs.
    best: dict[tuple[str, int], dict[str, float]] = {}
    for frames in counts:
        source = _source(work, frames)
        for _ in range(2):
            for name, runner in RUNNERS.items():
                seconds = _steps(source, work / f"beam_out_{name}", runner)
                previous = best.get((name, frames), seconds)
                best[(name, frames)] = {step: min(seconds[step], previous[step]) for step in seconds}
    cpu = _cpu_result(best, max(counts))
    return (
        _speed_results(best, counts)
        + _growth_results(best, counts)
        + [cpu, *_dataflow_results(cpu.value, max(counts))]
    )


def _speed_results(best: dict, counts: tuple[int, ...]) -> list[Result]:
    results = []
    for frames in counts:
        for step in STEPS:
            beam_s, pool_s = best[("beam", frames)][step], best[("pool", frames)][step]
            results.append(
                Result(
                    name=f"{step} on Beam's DirectRunner, {frames} frames {FULL_SIZE[0]}x{FULL_SIZE[1]}",
                    value=frames / beam_s,
                    unit="frames/s",
                    baseline_name=f"the local process pool, {os.cpu_count()} processes",
                    baseline_value=frames / pool_s,
                    goal="ratio >= 0.80",
                    command=f"CITYSEG_BENCH_BEAM_FRAMES={','.join(map(str, counts))} "
                    "python -m tests.benchmarks --only beam",
                    machine=machine(),
                    detail=f"{os.cpu_count()} threads vs {os.cpu_count()} processes, best of 2; "
                    f"shards stored at {SHARD_SIZE[0]}x{SHARD_SIZE[1]}",
                )
            )
    return results


def _growth_results(best: dict, counts: tuple[int, ...]) -> list[Result]:
    small, large = min(counts), max(counts)
    results = []
    for name in RUNNERS:
        per_frame = {n: sum(best[(name, n)][step] for step in STEPS) / n for n in (small, large)}
        results.append(
            Result(
                name=f"{name}: seconds per frame (remap + shard + statistics) at {large} frames",
                value=per_frame[large],
                unit="s/frame",
                baseline_name=f"the same at {small} frames",
                baseline_value=per_frame[small],
                goal="ratio <= 1.10 (linear cost growth)",
                command="python -m tests.benchmarks --only beam",
                machine=machine(),
                detail=f"{FULL_SIZE[0]}x{FULL_SIZE[1]} source, best of 2",
            )
        )
    return results


def _cpu_result(best: dict, frames: int) -> Result:
    """CPU seconds per frame: what a Dataflow worker pays per frame (docs/beam.md), Beam against the pool."""
    beam, pool = best[("beam", frames)], best[("pool", frames)]
    return Result(
        name=f"CPU seconds per frame, remap + shard + statistics on Beam, {frames} frames "
        f"{FULL_SIZE[0]}x{FULL_SIZE[1]}",
        value=beam["cpu"] / frames,
        unit="CPU s/frame",
        baseline_name="the same on the local process pool",
        baseline_value=pool["cpu"] / frames,
        goal="ratio <= 1.25 (the engine adds little work per frame)",
        command="python -m tests.benchmarks --only beam",
        machine=machine(),
        detail=f"outputs per frame: {beam['mask_bytes'] / frames / 1e3:.0f} kB of category mask, "
        f"{beam['shard_bytes'] / frames / 1e3:.0f} kB of {SHARD_SIZE[0]}x{SHARD_SIZE[1]} shards",
    )


def _dataflow_results(cpu_s_per_frame: float, measured_frames: int) -> list[Result]:
    """On paper: minutes and dollars of the three steps on Dataflow, from the CPU cost measured here."""
    per_worker_h = (
        DATAFLOW_VCPUS * PRICE_VCPU_H + DATAFLOW_MEMORY_GB * PRICE_GB_H + DATAFLOW_DISK_GB * PRICE_DISK_GB_H
    )
    results = []
    for frames in DATAFLOW_FRAMES:
        cpu_s = frames * cpu_s_per_frame
        workers = min(DATAFLOW_MAX_WORKERS, math.ceil(cpu_s / (DATAFLOW_VCPUS * DATAFLOW_TARGET_S)))
        minutes = DATAFLOW_START_MIN + cpu_s / (workers * DATAFLOW_VCPUS) / 60
        detail = (
            f"{workers} n2-standard-4 workers; {cpu_s_per_frame:.3f} CPU s/frame measured here on Beam at "
            f"{measured_frames} frames; {DATAFLOW_START_MIN:.0f} min to start; "
            f"{PRICE_VCPU_H} USD per vCPU-hour, {PRICE_GB_H} per GB-hour, {PRICE_DISK_GB_H} per disk "
            "GB-hour; the copy of the output through the task pod is not counted (docs/beam.md)"
        )
        size = f"{FULL_SIZE[0]}x{FULL_SIZE[1]}"
        name = f"Dataflow on paper, remap + shard + statistics of {frames:,} frames {size}"
        for what, value, unit in (
            ("job time", minutes, "min"),
            ("cost", workers * per_worker_h * minutes / 60, "USD"),
        ):
            results.append(
                Result(
                    name=f"{name}: {what}",
                    value=value,
                    unit=unit,
                    goal="an estimate from the measured CPU cost, not a measurement on Dataflow",
                    command="python -m tests.benchmarks --only beam",
                    detail=detail,
                )
            )
    return results
