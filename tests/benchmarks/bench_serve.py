"""Load on the prediction API: concurrent clients against `cityseg serve` on loopback vs raw model.predict.

The server is the real `cityseg serve` process, posting one 256x512 synthetic street scene. Latency:
one client, in rounds interleaved with `model.predict` on the same image in this process (the
baseline) while the server sits idle. Throughput: N asyncio/aiohttp clients for a fixed time, each
sending its next request when the last one is answered.
"""

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

from tests.benchmarks.common import Result, machine
from tests.conftest import free_port, start_server, stop_server

SIZE = (256, 512)
MODEL = "unet_mini"
ROUNDS = 4
PER_ROUND = 6
CONCURRENT_S = 20.0
CLIENTS = 4


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
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)
    ) as session:
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


def _street_scene(work: Path) -> tuple[bytes, np.ndarray]:
    """One synthetic 256x512 frame: its PNG bytes and its pixels as RGB uint8."""
    import cv2

    from cityseg.components.synth.core import SynthConfig, generate

    generate(SynthConfig(out=str(work / "synth"), cities=3, frames_per_city=1, height=SIZE[0], width=SIZE[1]))
    path = sorted((work / "synth" / "leftImg8bit").rglob("*_leftImg8bit.png"))[0]
    data = path.read_bytes()
    return data, cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )


def _sequential(url: str, data: bytes, count: int) -> list[tuple[float, float]]:
    """`count` requests one after the other: (client latency ms, server-reported inference ms) each."""
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="street.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    timings = []
    for _ in range(count):
        request = urllib.request.Request(f"{url}/predict", data=body, headers=headers, method="POST")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            inference_ms = float(response.headers["X-Inference-Ms"])
        timings.append(((time.perf_counter() - started) * 1000, inference_ms))
    return timings


def _interleaved(url: str, data: bytes, model_path: Path, image: np.ndarray) -> dict:
    """Rounds of model.predict, the server's predictor in process, and sequential API requests.

    Interleaving keeps the three comparable when other work on the machine comes and goes.
    """
    from cityseg.components.modelstore import load
    from cityseg.components.serve.model_watcher import mask_predictor

    model = load(model_path).model
    # The image is already at the model's size: model.predict gets it as float32 in [0, 1] directly.
    batch = image[None].astype(np.float32) / 255.0
    predictor = mask_predictor(model)
    model.predict(batch, verbose=0)
    predictor(image)
    _sequential(url, data, 2)
    raw, compiled, api = [], [], []
    for _ in range(ROUNDS):
        for _ in range(PER_ROUND):
            started = time.perf_counter()
            model.predict(batch, verbose=0).argmax(-1)
            raw.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            predictor(image)
            compiled.append((time.perf_counter() - started) * 1000)
        api += _sequential(url, data, PER_ROUND)
    latency = np.array([t[0] for t in api])
    return {
        "raw_ms": float(np.median(raw)),
        "compiled_ms": float(np.median(compiled)),
        "p50_ms": float(np.percentile(latency, 50)),
        "p99_ms": float(np.percentile(latency, 99)),
        "overhead_ms": float(np.median([t[0] - t[1] for t in api])),
        "requests": len(api),
    }


def run(work_dir: Path) -> list[Result]:
    """API latency with one client against raw model.predict, and throughput with several clients."""
    from cityseg.components.train.models import build_model

    work_dir.mkdir(parents=True, exist_ok=True)
    data, image = _street_scene(work_dir)
    model_path = work_dir / f"{MODEL}.keras"
    build_model(MODEL, *SIZE).save(model_path)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(Path(sys.executable).parent / "cityseg"),
        "serve",
        "--model",
        str(model_path),
        "--port",
        str(port),
    ]
    server = start_server(argv, f"{url}/readyz", work_dir / "serve.log", timeout_s=180)
    try:
        single = _interleaved(url, data, model_path, image)
        concurrent = asyncio.run(_load(url, data, CLIENTS, CONCURRENT_S))
    finally:
        stop_server(server)

    where = (
        f"{MODEL} at {SIZE[0]}x{SIZE[1]}, PNG upload of a synthetic frame ({len(data) // 1024} KiB), loopback"
    )
    command = "python -m tests.benchmarks --only serve"
    raw_ms = single["raw_ms"]
    return [
        Result(
            name="API /predict p50 latency, 1 client",
            value=single["p50_ms"],
            unit="ms",
            baseline_name="model.predict (+ argmax) on the same image, interleaved in the same run (median)",
            baseline_value=raw_ms,
            goal="ratio <= 1.20 (the API adds under 20% at p50)",
            command=command,
            machine=machine(),
            detail=f"{where}; {single['requests']} sequential requests in {ROUNDS} rounds, "
            f"p99 {single['p99_ms']:.1f} ms; the server's own compiled predictor in process "
            f"{single['compiled_ms']:.1f} ms; HTTP + decode + encode (latency minus the server's "
            f"inference time) {single['overhead_ms']:.1f} ms at the median",
        ),
        Result(
            name=f"API /predict requests/s, {CLIENTS} concurrent clients for {CONCURRENT_S:g} s",
            value=concurrent["rps"],
            unit="requests/s",
            baseline_name="1 / median model.predict time (one caller, no HTTP)",
            baseline_value=1000 / raw_ms,
            goal="ratio >= 0.8 (HTTP, decoding and encoding cost under 20% of throughput)",
            command=command,
            machine=machine(),
            detail=f"{where}; {concurrent['requests']} requests, "
            f"p50 {concurrent['p50_ms']:.1f} ms, p99 {concurrent['p99_ms']:.1f} ms (queueing included)",
        ),
        Result(
            name="API /predict errors under load",
            value=float(len(concurrent["errors"])),
            unit="errors",
            goal="value <= 0",
            command=command,
            machine=machine(),
            detail=f"non-200 answers or client errors over {concurrent['requests']} concurrent requests "
            f"(a sequential request that fails stops the benchmark): {concurrent['errors'][:5]}",
        ),
    ]
