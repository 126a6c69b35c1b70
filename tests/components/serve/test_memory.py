"""Decompression bombs inside the pixel limit: the server's memory stays under its documented bound."""

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from cityseg.components.serve.config import ServeConfig
from tests.components.serve.conftest import BIN
from tests.conftest import free_port, start_server, stop_server


def memory_bytes(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since start) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow
def test_four_concurrent_64_megapixel_bombs_stay_under_the_bound(flat_model_path, tmp_path):
    config = ServeConfig(max_megapixels=64, max_concurrent=2)
    # 8000x8000 black pixels: 64 megapixels, exactly the limit, in a PNG of about 190 KB.
    bomb = cv2.imencode(".png", np.zeros((8000, 8000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(flat_model_path), "--port", str(port),
        "--max-megapixels", "64", "--max-concurrent", str(config.max_concurrent),
    ]  # fmt: skip
    server = start_server(argv, f"{url}/readyz", tmp_path / "serve.log", timeout_s=120)
    statuses = []

    def post(fmt: str) -> None:
        files = {"file": ("bomb.png", bomb.tobytes())}
        response = requests.post(f"{url}/predict", params={"format": fmt}, files=files, timeout=600)
        statuses.append(response.status_code)

    try:
        idle = memory_bytes(server.pid, "VmRSS")
        clients = [threading.Thread(target=post, args=(fmt,)) for fmt in ("ids", "overlay", "ids", "overlay")]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        peak = memory_bytes(server.pid, "VmHWM")
    finally:
        stop_server(server)
    assert statuses == [200] * 4
    bound = config.max_concurrent * config.request_memory_bytes
    assert peak - idle < bound, (
        f"grew {(peak - idle) / 2**20:.0f} MiB, over the bound {bound / 2**20:.0f} MiB"
    )
