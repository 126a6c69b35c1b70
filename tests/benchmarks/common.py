"""What every benchmark returns: a figure, its baseline run side by side, and where it was taken."""

import dataclasses
import os
import platform
import time
from pathlib import Path

BENCH_DIR = Path("work/bench")


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured figure against the baseline it is compared with.

    `ratio` is value / baseline_value; `goal` says in words which way it should go and how far.
    """

    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline_value: float | None = None
    goal: str = ""
    command: str = ""
    machine: str = ""
    detail: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


def machine() -> str:
    """This machine in words: CPU model, cores and memory."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, no GPU"


def timed(fn, *args, repeat: int = 1, **kwargs) -> tuple[float, object]:
    """Best wall-clock seconds of `repeat` calls of fn(*args, **kwargs), and the last return value."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, value
