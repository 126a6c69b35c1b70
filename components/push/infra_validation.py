"""Infra validation (TFX's InfraValidator): the candidate must load and answer in the real serving code.

Between the metric gates and any alias move, `push` starts `cityseg serve`'s own app
(`cityseg.components.serve.api.create_app`) under uvicorn on 127.0.0.1 with a free port, serving the
registered version `models:/<name>/<version>` exactly as the cluster will after `@champion` moves.
It sends the first validation images through the Open Inference Protocol
(`POST /v2/models/<name>/infer`, binary data) and requires that the model loads within a time limit,
every request is answered, every mask is UINT8 [1, H, W] with category ids 0..7, the masks equal the
evaluated model's predictions on enough pixels, and p95 latency stays under a limit.
"""

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from cityseg.components import inference
from cityseg.components.labels import NUM_CLASSES
from cityseg.components.push.config import InfraLimits

log = logging.getLogger(__name__)

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclasses.dataclass(frozen=True)
class InfraResult:
    """The outcome: passed or the reason, and the figures measured on the way."""

    passed: bool
    reason: str
    load_s: float | None = None
    requests: int = 0
    answered: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    agreement: float | None = None

    def tags(self) -> dict[str, str]:
        """MLflow version tags recording the outcome and the latency figures."""
        tags = {
            "infra_validation": "passed" if self.passed else "failed",
            "infra_validation_reason": self.reason,
        }
        tags["infra_requests"] = f"{self.answered}/{self.requests}"
        for key in ("load_s", "p50_ms", "p95_ms", "agreement"):
            value = getattr(self, key)
            if value is not None:
                tags[f"infra_{key}"] = f"{value:.6g}"
        return tags


def reference_predictions(loaded, data: str, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` images of `split` as uint8 RGB, and the evaluated model's masks for them.

    The masks come from the same compiled predictor `cityseg evaluate` scores with.

    Raises:
        ValueError: the split has no examples.
    """
    from cityseg.components.dataset import load_manifest, make_dataset

    manifest = load_manifest(data)
    predict = inference.predictor(loaded.model, (int(manifest["height"]), int(manifest["width"])))
    images, masks = [], []
    for batch, _ in make_dataset(data, split, min(count, 8)).take(-(-count // min(count, 8))):
        images.append((batch.numpy() * 255).round().astype(np.uint8))
        masks.append(predict(batch).numpy())
    if not images:
        raise ValueError(f"{data}: no {split} images to validate the serving path with")
    return np.concatenate(images)[:count], np.concatenate(masks)[:count]


@contextlib.contextmanager
def running_server(model_ref: str, tracking_uri: str | None, cache_dir: str):
    """`cityseg serve`'s app for `model_ref` under uvicorn on 127.0.0.1; yields its base URL."""
    import uvicorn

    from cityseg.components.serve.api import create_app
    from cityseg.components.serve.config import ServeConfig

    app = create_app(
        ServeConfig(model=model_ref, images=None, tracking_uri=tracking_uri, cache_dir=cache_dir)
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Port 0: the kernel picks a free port and the listening socket keeps it ours (no race).
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="infra-serve"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except OSError as err:
        return 0, str(err)


def wait_ready(base: str, name: str, timeout_s: float) -> tuple[bool, float, str]:
    """Poll `/v2/models/<name>/ready` until 200 or `timeout_s`; (ready, seconds, last answer)."""
    start = time.perf_counter()
    status, body = 0, "no answer"
    while True:
        elapsed = time.perf_counter() - start
        if elapsed > timeout_s:
            return False, elapsed, f"{status} {body}".strip()
        status, body = _get(f"{base}/v2/models/{name}/ready", timeout=max(timeout_s - elapsed, 0.1))
        if status == 200:
            return True, time.perf_counter() - start, body
        time.sleep(0.05)


def infer(base: str, name: str, image: np.ndarray, timeout_s: float) -> np.ndarray:
    """One binary-data infer call; the `mask` output as an array of its declared shape.

    Raises:
        ValueError: the server did not answer 200 or the answer breaks the protocol.
    """
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "UINT8",
                "shape": [1, *image.shape],
                "parameters": {"binary_data_size": image.nbytes},
            }
        ],
        "outputs": [{"name": "mask", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    request = urllib.request.Request(
        f"{base}/v2/models/{name}/infer",
        data=head + image.tobytes(),
        headers={"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            body, length = answer.read(), answer.headers.get(HEADER_LENGTH)
    except urllib.error.HTTPError as err:
        raise ValueError(f"answered {err.code}: {err.read().decode('utf-8', 'replace')[:300]}") from None
    except OSError as err:
        raise ValueError(f"no answer: {err}") from None
    return _mask(body, length)


def _mask(body: bytes, length: str | None) -> np.ndarray:
    split = int(length) if length else len(body)
    outputs = {o.get("name"): o for o in json.loads(body[:split]).get("outputs", [])}
    if "mask" not in outputs:
        raise ValueError(f"the answer has no 'mask' output (outputs: {sorted(map(str, outputs))})")
    mask = outputs["mask"]
    if mask.get("datatype") != "UINT8":
        raise ValueError(f"'mask' is {mask.get('datatype')!r}, not UINT8")
    if "data" in mask:
        values = np.asarray(mask["data"], dtype=np.int64)
    else:
        values = np.frombuffer(body[split : split + mask["parameters"]["binary_data_size"]], np.uint8)
    shape = mask.get("shape", [])
    if int(np.prod(shape)) != values.size:
        raise ValueError(f"'mask' declares shape {shape} but holds {values.size} values")
    return values.reshape(shape)


def validate(
    model_ref: str,
    name: str,
    images: np.ndarray,
    expected: np.ndarray,
    limits: InfraLimits,
    *,
    tracking_uri: str | None,
    cache_dir: str,
) -> InfraResult:
    """Serve `model_ref` as `name`, send `images` and compare the masks with `expected` (see the module)."""
    with running_server(model_ref, tracking_uri, cache_dir) as base:
        ready, load_s, last = wait_ready(base, name, limits.load_timeout_s)
        if not ready:
            reason = f"{model_ref} did not load within {limits.load_timeout_s:g}s (last answer: {last[:300]})"
            return InfraResult(False, f"infra validation: {reason}", load_s, len(images))
        return _exchange(base, name, images, expected, limits, load_s)


def _exchange(base, name, images, expected, limits: InfraLimits, load_s: float) -> InfraResult:
    latencies, agree, problems = [], 0, []
    for i, (image, truth) in enumerate(zip(images, expected, strict=True)):
        start = time.perf_counter()
        try:
            mask = infer(base, name, image, limits.request_timeout_s)
        except ValueError as err:
            problems.append(f"request {i + 1}: {err}")
            continue
        latencies.append(1000.0 * (time.perf_counter() - start))
        if tuple(mask.shape) != (1, *truth.shape):
            problems.append(f"request {i + 1}: mask shape {list(mask.shape)}, expected {[1, *truth.shape]}")
        elif mask.min() < 0 or mask.max() >= NUM_CLASSES:
            problems.append(
                f"request {i + 1}: mask values {mask.min()}..{mask.max()} outside 0..{NUM_CLASSES - 1}"
            )
        else:
            agree += int((mask[0] == truth).sum())
    figures = {
        "load_s": load_s,
        "requests": len(images),
        "answered": len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
        "p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
        "agreement": agree / expected.size if not problems else None,
    }
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return InfraResult(False, f"infra validation: {problems[0]}{more}", **figures)
    if figures["agreement"] < limits.min_agreement:
        return InfraResult(
            False,
            f"infra validation: served masks equal the evaluated predictions on "
            f"{figures['agreement']:.4%} of pixels < {limits.min_agreement:.4%}",
            **figures,
        )
    if figures["p95_ms"] > limits.max_p95_ms:
        return InfraResult(
            False,
            f"infra validation: p95 latency {figures['p95_ms']:.1f} ms > {limits.max_p95_ms:g} ms",
            **figures,
        )
    reason = (
        f"served {len(images)} images: loaded in {load_s:.1f}s, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms, {figures['agreement']:.4%} of pixels agree"
    )
    return InfraResult(True, reason, **figures)


def validate_version(config, loaded, version: str, split: str, tracking_uri: str) -> InfraResult:
    """Infra-validate `models:/<config.name>/<version>` against `loaded`'s predictions; tag the outcome.

    Args:
        config: the `PushConfig` (data, name, cache_dir and the infra_* limits).
        loaded: the model the metrics were bound to (its predictions are the reference).
    """
    from cityseg.components.push import registry

    images, expected = reference_predictions(loaded, config.data, split, config.infra_images)
    ref = f"models:/{config.name}/{version}"
    result = validate(
        ref,
        config.name,
        images,
        expected,
        config.infra_limits(),
        tracking_uri=tracking_uri,
        cache_dir=config.cache_dir,
    )
    log.info("infra validation of %s: %s", ref, result.reason)
    registry.set_version_tags(config.name, version, result.tags())
    return result
