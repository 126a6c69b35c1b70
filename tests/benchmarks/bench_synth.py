"""Synthetic Cityscapes generation speed at 256x512, against the PNG writes it cannot avoid."""

import dataclasses
import shutil
import time
from pathlib import Path

import cv2

from cityseg.components.synth import core
from cityseg.components.synth.config import SynthConfig
from tests.benchmarks.common import Result, machine, timed

HEIGHT, WIDTH = 256, 512
CITIES, FRAMES_PER_CITY = 3, 40


def _write_pngs(images: list, out: Path) -> None:
    """The floor: encode and write the three PNGs of every frame, with nothing to draw."""
    out.mkdir(parents=True, exist_ok=True)
    for i, (photo, ids, color) in enumerate(images):
        cv2.imwrite(str(out / f"{i}_leftImg8bit.png"), photo)
        cv2.imwrite(str(out / f"{i}_gtFine_labelIds.png"), ids)
        cv2.imwrite(str(out / f"{i}_gtFine_color.png"), color)


def run(work_dir: Path) -> list[Result]:
    """frames/min of `cityseg synth` on one and two processes, and of the PNG writes alone."""
    out = Path(work_dir) / "synth"
    config = SynthConfig(
        out=str(out), cities=CITIES, frames_per_city=FRAMES_PER_CITY, height=HEIGHT, width=WIDTH, workers=1
    )
    frames = CITIES * FRAMES_PER_CITY
    cpu_start = time.process_time()
    seconds, _ = timed(core.generate, config)
    cpu_seconds = time.process_time() - cpu_start
    images = []
    for path in sorted(out.glob("leftImg8bit/*/*/*_leftImg8bit.png")):
        gt = str(path).replace("/leftImg8bit/", "/gtFine/").removesuffix("_leftImg8bit.png")
        images.append(
            (
                cv2.imread(str(path), cv2.IMREAD_UNCHANGED),
                cv2.imread(gt + "_gtFine_labelIds.png", cv2.IMREAD_UNCHANGED),
                cv2.imread(gt + "_gtFine_color.png", cv2.IMREAD_UNCHANGED),
            )
        )
    floor_seconds, _ = timed(_write_pngs, images, Path(work_dir) / "pngs", repeat=2)
    parallel_seconds, _ = timed(core.generate, dataclasses.replace(config, workers=2))
    shutil.rmtree(out)
    shutil.rmtree(Path(work_dir) / "pngs")
    floor = frames * 60 / floor_seconds
    command = (
        f"cityseg synth --out DIR --cities {CITIES} --frames-per-city {FRAMES_PER_CITY} "
        f"--height {HEIGHT} --width {WIDTH}"
    )
    return [
        Result(
            name=f"synth {HEIGHT}x{WIDTH}, 1 process",
            value=frames * 60 / seconds,
            unit="frames/min",
            baseline_name="PNG writes alone (image, labelIds, colour)",
            baseline_value=floor,
            goal="several hundred frames/min on one core; the PNG writes are the ceiling",
            command=command + " --workers 1",
            machine=machine(),
            detail=(
                f"{frames} frames in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU "
                f"({frames * 60 / cpu_seconds:.0f} frames per CPU-minute); floor {floor_seconds:.1f} s"
            ),
        ),
        Result(
            name=f"synth {HEIGHT}x{WIDTH}, 2 processes",
            value=frames * 60 / parallel_seconds,
            unit="frames/min",
            baseline_name="1 process",
            baseline_value=frames * 60 / seconds,
            goal="close to 2x on 2 free cores",
            command=command + " --workers 2",
            machine=machine(),
            detail=f"{frames} frames in {parallel_seconds:.1f} s",
        ),
    ]
