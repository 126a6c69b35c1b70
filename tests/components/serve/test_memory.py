"""Decompression bombs inside the pixel limit, and more uploads than places: memory stays under the bound."""

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from cityseg.components.serve.config import ServeConfig
from tests.components.serve.conftest import BIN
from tests.conftest import free_port, start_server, stop_server

# More clients than the one place, each sending an upload at the limit.
CLIENTS = 12


def memory_bytes(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since start) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _serve(model: Path, config: ServeConfig, log: Path):
    """A real `cityseg serve` of `model` with the limits of `config`: (process, base URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(model), "--port", str(port),
        "--max-upload-mb", str(config.max_upload_mb), "--max-megapixels", str(config.max_megapixels),
        "--max-concurrent", str(config.max_concurrent),
    ]  # fmt: skip
    return start_server(argv, f"{url}/readyz", log, timeout_s=120), url


@pytest.mark.slow
def test_four_concurrent_64_megapixel_bombs_stay_under_the_bound(flat_model_path, tmp_path):
    config = ServeConfig(max_megapixels=64, max_concurrent=2)
    # 8000x8000 black pixels: 64 megapixels, exactly the limit, in a PNG of about 190 KB.
    bomb = cv2.imencode(".png", np.zeros((8000, 8000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    server, url = _serve(flat_model_path, config, tmp_path / "serve.log")
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


@pytest.mark.slow
def test_more_v2_bodies_than_places_stay_under_the_bound(flat_model_path, tmp_path):
    # Each body is the upload limit's worth of raw pixels: 20 MiB, a 2560x2730 UINT8 image. Before
    # the bodies were read only once admitted, twelve clients grew the server by three times the bound.
    config = ServeConfig(max_upload_mb=20, max_megapixels=10, max_concurrent=1)
    height, width = 2560, 2730
    pixels = np.zeros((height, width, 3), np.uint8).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "UINT8",
                    "shape": [1, height, width, 3],
                    "parameters": {"binary_data_size": len(pixels)},
                }
            ],
            "outputs": [{"name": "mask", "parameters": {"binary_data": True}}],
        }
    ).encode()
    body = header + pixels
    assert len(body) <= config.max_upload_bytes
    server, url = _serve(flat_model_path, config, tmp_path / "serve.log")
    statuses = []

    def post() -> None:
        response = requests.post(
            f"{url}/v2/models/{name}/infer",
            data=body,
            headers={"Inference-Header-Content-Length": str(len(header))},
            timeout=600,
        )
        statuses.append(response.status_code)

    try:
        name = requests.get(f"{url}/readyz", timeout=10).json()["model"]
        # The peak since start counts loading the model; start counting it from the idle server.
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")
        idle = memory_bytes(server.pid, "VmRSS")
        clients = [threading.Thread(target=post) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        peak = memory_bytes(server.pid, "VmHWM")
    finally:
        stop_server(server)
    assert statuses == [200] * CLIENTS
    bound = config.max_concurrent * config.request_memory_bytes
    assert peak - idle < bound, (
        f"{CLIENTS} clients, {config.max_concurrent} place: grew {(peak - idle) / 2**20:.0f} MiB, "
        f"over the bound {bound / 2**20:.0f} MiB"
    )
