"""The clients `bench_serve.py` drives `cityseg serve` with: multipart /predict, /v2 infer, load, bombs."""

import asyncio
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np


def multipart(data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with `data` as the field `file`, and its Content-Type header."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="street.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def predict(url: str, data: bytes, count: int) -> list[tuple[float, float]]:
    """`count` /predict?format=ids requests one after the other: (client ms, server inference ms) each."""
    body, headers = multipart(data)
    timings = []
    for _ in range(count):
        request = urllib.request.Request(f"{url}/predict", data=body, headers=headers, method="POST")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            inference_ms = float(response.headers["X-Inference-Ms"])
        timings.append(((time.perf_counter() - started) * 1000, inference_ms))
    return timings


def v2_infer(client, model: str, image: np.ndarray, binary: bool, count: int) -> list[float]:
    """`count` /v2 infer calls through tritonclient (binary data or JSON both ways): client ms each."""
    import tritonclient.http as triton

    tensor = triton.InferInput("image", [1, *image.shape], "UINT8")
    tensor.set_data_from_numpy(image[None], binary_data=binary)
    outputs = [triton.InferRequestedOutput("mask", binary_data=binary)]
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        client.infer(model, [tensor], outputs=outputs).as_numpy("mask")
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _client(session, url: str, data: bytes, deadline: float, results: tuple[list, list]) -> None:
    import aiohttp

    latencies, errors = results
    while time.perf_counter() < deadline:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="street.png", content_type="image/png")
        started = time.perf_counter()
        try:
            async with session.post(f"{url}/predict", data=form) as response:
                await response.read()
                status = response.status
        except aiohttp.ClientError as err:
            errors.append(repr(err))
            continue
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(status)


async def _load(url: str, data: bytes, clients: int, seconds: float) -> dict:
    import aiohttp

    latencies, errors = [], []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), connector=connector) as session:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(_client(session, url, data, deadline, (latencies, errors)) for _ in range(clients))
        )
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(latencies) / elapsed,
    }


def load(url: str, data: bytes, clients: int, seconds: float) -> dict:
    """`clients` asyncio clients posting `data` for `seconds`: requests, errors, p50/p99 ms, requests/s."""
    return asyncio.run(_load(url, data, clients, seconds))


def memory_bytes(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since start) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} in /proc/{pid}/status")


def bombs(url: str, pid: int, bomb: bytes, count: int) -> tuple[int, int]:
    """`count` concurrent /predict uploads of `bomb`: (RSS before, peak RSS after) of the server `pid`."""
    idle = memory_bytes(pid, "VmRSS")
    body, headers = multipart(bomb)
    failures = []

    def post() -> None:
        request = urllib.request.Request(f"{url}/predict", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            if response.status != 200:
                failures.append(response.status)

    clients = [threading.Thread(target=post) for _ in range(count)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    if failures:
        raise RuntimeError(f"bomb requests failed: {failures}")
    return idle, memory_bytes(pid, "VmHWM")
