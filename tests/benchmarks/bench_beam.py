"""The Beam path against the local pool on one machine: remap, shard and the statistics, and cost growth.

Both engines run the same steps on the same 1024x2048 source, side by side; the figure is frames/s of
Beam's DirectRunner (threads, one per core) over the pool's. The source repeats a few synthetic frames
under new names (hard links): per frame the work is the same as for distinct frames, and 2,000 frames
take no extra disk. Cost growth is seconds per frame at the larger count over the smaller one.
"""

import dataclasses
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
    return _speed_results(best, counts) + _growth_results(best, counts) + [_cpu_result(best, max(counts))]


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
