"""A recording stand-in of the Kubernetes API for one KServe InferenceService.

No API server or KServe controller can run here. This HTTP server on 127.0.0.1 answers GET and
merge-PATCH on `/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}` the way the
API server does (RFC 7386 merge patch, `metadata.generation` bumped when the spec changes), and plays
the controller from a script: after how many reads a new revision becomes Ready, or that it never
does. Every request is recorded, so the tests check what a real cluster would receive.
"""

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PATH = "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def revision(generation: int) -> str:
    return f"cityseg-predictor-{generation:05d}"


def ready_status(latest: int, rolled_out: int, canary: int | None, url: str, generation: int = 0) -> dict:
    """What KServe reports once revision `latest` is Ready beside the rolled-out one."""
    if canary is None or latest == rolled_out:
        routes = [{"revisionName": revision(latest), "percent": 100, "latestRevision": True}]
    elif canary == 0:
        routes = [{"revisionName": revision(rolled_out), "percent": 100, "tag": "prev"}]
    else:
        routes = [
            {"revisionName": revision(rolled_out), "percent": 100 - canary, "tag": "prev"},
            {"revisionName": revision(latest), "percent": canary, "latestRevision": True},
        ]
    return {
        "observedGeneration": generation or latest,
        "url": "http://cityseg.kubeflow.example.com",
        "address": {"url": url},
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "components": {
            "predictor": {
                "latestCreatedRevision": revision(latest),
                "latestReadyRevision": revision(latest),
                "latestRolledoutRevision": revision(rolled_out),
                "previousRolledoutRevision": revision(rolled_out),
                "traffic": routes,
            }
        },
    }


def failed_status(latest: int, ready: int, canary: int, generation: int) -> dict:
    """What KServe reports while revision `latest` crash-loops beside the Ready one."""
    message = f"Revision {revision(latest)} failed: container kserve-container exited with 1"
    return {
        "observedGeneration": generation,
        "conditions": [
            {"type": "PredictorReady", "status": "False", "reason": "RevisionFailed", "message": message},
            {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": message},
        ],
        "components": {
            "predictor": {
                "latestCreatedRevision": revision(latest),
                "latestReadyRevision": revision(ready),
                "previousRolledoutRevision": revision(ready),
                "traffic": [{"revisionName": revision(ready), "percent": 100 - canary, "tag": "prev"}],
            }
        },
    }


@dataclass
class KServeAPI:
    """The stored object, the controller script, and the recorded requests."""

    namespace: str = "kubeflow"
    name: str = "cityseg"
    obj: dict | None = None
    ready_after_reads: int | None = 1  # None: a new revision never becomes Ready
    refuse: tuple[int, str] | None = None  # (status, message) for every request
    requests: list = field(default_factory=list)
    url: str = "http://cityseg.kubeflow.svc.cluster.local"
    _reads_since_change: int = 0
    rolled_out: int = 1
    latest: int = 1

    @property
    def path(self) -> str:
        return PATH.format(namespace=self.namespace, name=self.name)

    def observe(self) -> dict:
        """The object as a GET sees it now: the controller catches up after `ready_after_reads` reads."""
        self._reads_since_change += 1
        generation = self.obj["metadata"]["generation"]
        canary = self.obj["spec"]["predictor"].get("canaryTrafficPercent")
        if self.ready_after_reads is None and self.latest > self.rolled_out:
            self.obj["status"] = failed_status(self.latest, self.rolled_out, canary or 0, generation)
        elif self.ready_after_reads is not None and self._reads_since_change > self.ready_after_reads:
            self.obj["status"] = ready_status(self.latest, self.rolled_out, canary, self.url, generation)
            if canary is None:
                self.rolled_out = self.latest
        return self.obj

    def apply(self, patch: dict) -> dict:
        """Merge `patch`; a new generation for any spec change, a new revision for a new pod template."""
        before = self.obj["spec"]
        self.obj = merge_patch(self.obj, patch)
        if self.obj["spec"] != before:
            self.obj["metadata"]["generation"] += 1
            self._reads_since_change = 0
        template = {k: v for k, v in self.obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}
        if template != {k: v for k, v in before["predictor"].items() if k != "canaryTrafficPercent"}:
            self.latest += 1
        return self.obj


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, body=None):
        api: KServeAPI = self.server.api
        api.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))
        if api.refuse:
            status, message = api.refuse
            return self._reply(
                status, {"kind": "Status", "status": "Failure", "message": message, "code": status}
            )
        if self.path != api.path or api.obj is None:
            message = f'inferenceservices.serving.kserve.io "{self.path.rsplit("/", 1)[-1]}" not found'
            return self._reply(404, {"kind": "Status", "status": "Failure", "message": message, "code": 404})
        return self._reply(200, api.observe() if body is None else api.apply(body))

    def do_GET(self):
        self._handle()

    def do_PATCH(self):
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(json.loads(self.rfile.read(length)))


def committed_inferenceservice() -> dict:
    """The InferenceService of manifests/serving as the API server returns it after `kubectl apply`."""
    docs = yaml.safe_load_all((ROOT / "manifests" / "serving" / "inferenceservice.yaml").read_text())
    (isvc,) = [doc for doc in docs if doc and doc["kind"] == "InferenceService"]
    isvc["metadata"].update(namespace="kubeflow", generation=1)
    isvc["status"] = ready_status(1, 1, None, "http://cityseg.kubeflow.svc.cluster.local")
    return isvc


@pytest.fixture
def kserve_api():
    """(API URL, KServeAPI state) of a recording stand-in holding the committed InferenceService."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.api = KServeAPI(obj=committed_inferenceservice())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.api
    server.shutdown()
    server.server_close()
