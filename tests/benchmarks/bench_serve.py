"""The prediction API on loopback against the model in process: latency, throughput, /v2, memory under bombs.

The server is the real `cityseg serve` process with unet_mini at 256x512. Latency: one client, in
rounds interleaved with the server's own predictor (and `model.predict`) in this process while the
server sits idle, at 256x512 (a synthetic frame) and 1024x2048 (the same frame enlarged, resized by
the server to the model's size): `/predict` (multipart PNG) and `/v2/.../infer` through tritonclient
with binary data and with JSON. Throughput: N asyncio clients for a fixed time. Memory: peak RSS of
fresh servers under 1 and 4 concurrent 64-megapixel PNG bombs (8000x8000, ~190 KB each).
"""

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from cityseg.components.serve.config import ServeConfig
from tests.benchmarks import serve_clients
from tests.benchmarks.common import Result, machine
from tests.conftest import free_port, start_server, stop_server

SIZE, BIG = (256, 512), (1024, 2048)
MODEL = "unet_mini"
ROUNDS, PER_ROUND = 3, 4
CONCURRENT_S, CLIENTS = 20.0, 4
COMMAND = "python -m tests.benchmarks --only serve"


def _street_scene(work: Path) -> np.ndarray:
    """One synthetic 256x512 frame as RGB uint8."""
    from cityseg.components.synth.config import SynthConfig
    from cityseg.components.synth.core import generate

    generate(SynthConfig(out=str(work / "synth"), cities=3, frames_per_city=1, height=SIZE[0], width=SIZE[1]))
    path = sorted((work / "synth" / "leftImg8bit").rglob("*_leftImg8bit.png"))[0]
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _serve(work: Path, model_path: Path, name: str, *options: str):
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
    return url, start_server([*argv, *options], f"{url}/readyz", work / f"{name}.log", timeout_s=180)


def _interleaved(url: str, model_path: Path, image: np.ndarray) -> dict:
    """Medians over interleaved rounds: in-process predictor, model.predict, /predict, /v2 binary and JSON."""
    import tritonclient.http as triton

    from cityseg.components.modelstore import load
    from cityseg.components.serve.model_watcher import mask_predictor

    model = load(model_path).model
    predictor = mask_predictor(model)
    data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    at_size = image.shape[:2] == SIZE
    batch = image[None].astype(np.float32) / 255.0
    times = {"compiled": [], "raw": [], "predict": [], "binary": [], "json": []}
    with triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=300) as client:
        name = client.get_model_metadata(model.name)["name"]
        (
            predictor(image),
            serve_clients.predict(url, data, 1),
            serve_clients.v2_infer(client, name, image, True, 1),
        )
        # One of each per step, so that load from elsewhere on the machine falls on all of them alike.
        for _ in range(ROUNDS * PER_ROUND):
            started = time.perf_counter()
            predictor(image)
            times["compiled"].append((time.perf_counter() - started) * 1000)
            if at_size:
                started = time.perf_counter()
                model.predict(batch, verbose=0).argmax(-1)
                times["raw"].append((time.perf_counter() - started) * 1000)
            times["predict"] += [t[0] for t in serve_clients.predict(url, data, 1)]
            times["binary"] += serve_clients.v2_infer(client, name, image, True, 1)
            times["json"] += serve_clients.v2_infer(client, name, image, False, 1)
    return {key: float(np.median(values)) if values else None for key, values in times.items()} | {
        "png_kib": len(data) / 1024,
        "requests": ROUNDS * PER_ROUND,
    }


def _memory(work: Path, model_path: Path) -> dict[int, tuple[int, int]]:
    """(idle, peak) RSS bytes of a fresh server (default limits) under 1 and under 4 concurrent bombs."""
    bomb = cv2.imencode(".png", np.zeros((8000, 8000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    measured = {}
    for count in (1, 4):
        url, server = _serve(work, model_path, f"bombs-{count}")
        try:
            measured[count] = serve_clients.bombs(url, server.pid, bomb.tobytes(), count)
        finally:
            stop_server(server)
    return measured


def _latency_results(figures: dict[tuple[int, int], dict], where: str) -> list[Result]:
    results = []
    for size, f in figures.items():
        at = f"{size[0]}x{size[1]}"
        detail = (
            f"{where}; image {at} (PNG {f['png_kib']:.0f} KiB), {f['requests']} requests of each kind, "
            f"interleaved one by one; medians: in process {f['compiled']:.1f} ms, "
            f"/predict {f['predict']:.1f} ms, "
            f"/v2 binary {f['binary']:.1f} ms, /v2 JSON {f['json']:.1f} ms"
        )
        common = {"unit": "ms", "command": COMMAND, "machine": machine(), "detail": detail}
        goal = "ratio <= 1.10 (protocol overhead under 10% of inference)" if size == BIG else "ratio <= 1.50"
        results += [
            Result(
                name=f"/v2 infer p50 (binary data), {at} image",
                value=f["binary"],
                baseline_name="the server's predictor in this process on the same image (median)",
                baseline_value=f["compiled"],
                goal=goal,
                **common,
            ),
            Result(
                name=f"/v2 infer p50 (binary data) against /predict p50, {at} image",
                value=f["binary"],
                baseline_name="/predict?format=ids, multipart PNG upload, PNG mask back (median)",
                baseline_value=f["predict"],
                goal="ratio <= 1.10 (the protocol costs no more than our own route)",
                **common,
            ),
            Result(
                name=f"/v2 infer p50 with JSON data against binary data, {at} image",
                value=f["json"],
                baseline_name="the same request with the binary-data extension (median)",
                baseline_value=f["binary"],
                goal="ratio >= 1.0 (what JSON costs; use binary data for images)",
                **common,
            ),
        ]
    return results


def _memory_results(measured: dict[int, tuple[int, int]]) -> list[Result]:
    config = ServeConfig()
    results = []
    for count, (idle, peak) in measured.items():
        bound = idle + min(count, config.max_concurrent) * config.request_memory_bytes
        results.append(
            Result(
                name=f"peak RSS of `cityseg serve`, {count} concurrent 64-megapixel PNG bomb(s)",
                value=peak / 2**20,
                unit="MiB",
                baseline_name=f"idle RSS + the documented bound (min({count}, --max-concurrent "
                f"{config.max_concurrent}) x {config.request_memory_bytes / 2**20:.0f} MiB)",
                baseline_value=bound / 2**20,
                goal="ratio <= 1.0 (memory stays under the bound that sizes the pod)",
                command=COMMAND,
                machine=machine(),
                detail=f"idle {idle / 2**20:.0f} MiB, growth {(peak - idle) / 2**20:.0f} MiB",
            )
        )
    return results


def run(work_dir: Path) -> list[Result]:
    """Latency of /predict and /v2 against the predictor in process, throughput, memory under bombs."""
    from cityseg.components.train.models import build_model

    work_dir.mkdir(parents=True, exist_ok=True)
    image = _street_scene(work_dir)
    model_path = work_dir / f"{MODEL}.keras"
    build_model(MODEL, *SIZE).save(model_path)
    big = cv2.resize(image, BIG[::-1], interpolation=cv2.INTER_LINEAR)
    data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()

    url, server = _serve(work_dir, model_path, "serve", "--max-upload-mb", "64")
    try:
        figures = {SIZE: _interleaved(url, model_path, image), BIG: _interleaved(url, model_path, big)}
        concurrent = serve_clients.load(url, data, CLIENTS, CONCURRENT_S)
    finally:
        stop_server(server)
    measured = _memory(work_dir, model_path)

    where = f"{MODEL} at {SIZE[0]}x{SIZE[1]}, loopback"
    single = figures[SIZE]
    return [
        Result(
            name="API /predict p50 latency, 1 client",
            value=single["predict"],
            unit="ms",
            baseline_name="model.predict (+ argmax) on the same image, interleaved in the same run (median)",
            baseline_value=single["raw"],
            goal="ratio <= 1.20 (the API adds under 20% at p50)",
            command=COMMAND,
            machine=machine(),
            detail=f"{where}; PNG upload of a synthetic frame ({single['png_kib']:.0f} KiB); "
            f"the server's own compiled predictor in process {single['compiled']:.1f} ms",
        ),
        Result(
            name=f"API /predict requests/s, {CLIENTS} concurrent clients for {CONCURRENT_S:g} s",
            value=concurrent["rps"],
            unit="requests/s",
            baseline_name="1 / median model.predict time (one caller, no HTTP)",
            baseline_value=1000 / single["raw"],
            goal="ratio >= 0.8 (HTTP, decoding and encoding cost under 20% of throughput)",
            command=COMMAND,
            machine=machine(),
            detail=f"{where}; {concurrent['requests']} requests, "
            f"p50 {concurrent['p50_ms']:.1f} ms, p99 {concurrent['p99_ms']:.1f} ms (queueing included)",
        ),
        Result(
            name="API /predict errors under load",
            value=float(len(concurrent["errors"])),
            unit="errors",
            goal="value <= 0",
            command=COMMAND,
            machine=machine(),
            detail=f"non-200 answers or client errors over {concurrent['requests']} concurrent requests: "
            f"{concurrent['errors'][:5]}",
        ),
        *_latency_results(figures, where),
        *_memory_results(measured),
    ]
